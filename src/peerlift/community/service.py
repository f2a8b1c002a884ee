"""Every write of the community domain.

Each function validates (``check``), writes, records the engagement event through
``events.publish`` and only flushes: the caller's unit of work commits, and live
listeners hear of the event after that commit.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from peerlift.community.models import (
    REACTIONS,
    CircleRole,
    Comment,
    CommentRevision,
    Conversation,
    Membership,
    Mention,
    Message,
    Poll,
    PollOption,
    PollVote,
    Post,
    PostRevision,
    Reaction,
    Space,
    SpaceKind,
)
from peerlift.community.text import mentioned_handles, render
from peerlift.db import utcnow
from peerlift.errors import Conflict, Forbidden, InvalidInput, NotFound
from peerlift.events import Audience, publish
from peerlift.identity import service as identity
from peerlift.identity.models import Invitation, Role, User
from peerlift.notify.models import Kind
from peerlift.notify.service import notify
from peerlift.policy import (
    CAN_CREATE_CIRCLE_ROLES,
    CircleAccess,
    may_message,
    require_role,
)
from peerlift.research.models import Arm
from peerlift.safety import service as safety
from peerlift.settings import get_settings


class Contamination(Conflict):
    code = "other_arm"


class PollClosed(Conflict):
    code = "poll_closed"


MAX_COMMENT_CHARS = 5_000
MAX_MESSAGE_CHARS = 5_000


# --- text -------------------------------------------------------------------------------

def check_body(body: str, *, limit: int, field: str = "body", what: str = "post") -> str:
    if not isinstance(body, str):
        raise InvalidInput(f"The {what} must be text.", field=field)
    body = body.replace("\r\n", "\n").strip()
    if not body:
        raise InvalidInput(f"The {what} is empty. Write something first.", field=field)
    if len(body) > limit:
        raise InvalidInput(
            f"The {what} has {len(body):,} characters; the most is {limit:,}.", field=field
        )
    return body


def _members_by_handle(session: Session, space_id: int, handles: set[str]) -> dict[str, int]:
    if not handles:
        return {}
    rows = session.execute(
        select(User.handle, User.id)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.space_id == space_id, User.handle.in_(handles))
    ).all()
    return {handle: user_id for handle, user_id in rows}


def _render_with_mentions(session: Session, space_id: int, body: str) -> tuple[str, dict[str, int]]:
    """Safe HTML, and the members actually named in it (not those inside code or links)."""
    candidates = _members_by_handle(session, space_id, mentioned_handles(body))
    html = render(body, candidates)
    named = {int(user_id) for user_id in re.findall(r'class="mention" data-user-id="(\d+)"', html)}
    return html, {handle: user_id for handle, user_id in candidates.items() if user_id in named}


def _anonymous(post: Post) -> dict:
    """Event data of an anonymous post: the live stream then leaves out who acted."""
    return {"anonymous": True} if post.anonymous else {}


def _record_mentions(session: Session, access: CircleAccess, mentions: dict[str, int], *,
                     post_id: int | None = None, comment_id: int | None = None, anonymous: bool = False) -> None:
    """Those named hear of it; a mention in an anonymous post names no author."""
    actor_id = None if anonymous else access.user.id
    already: set[int] = set()
    if post_id is not None:
        already = set(session.scalars(select(Mention.user_id).where(Mention.post_id == post_id)))
    elif comment_id is not None:
        already = set(session.scalars(select(Mention.user_id).where(Mention.comment_id == comment_id)))
    for user_id in sorted(set(mentions.values()) - already - {access.user.id}):
        session.add(Mention(post_id=post_id, comment_id=comment_id, user_id=user_id))
        publish(session, "mention.created", Audience(user_id=user_id), actor_id=access.user.id,
                object_type="post" if post_id else "comment", object_id=post_id or comment_id,
                data={"circle_id": access.space.id, "post_id": post_id, "comment_id": comment_id,
                      **({"anonymous": True} if anonymous else {})})
        notify(session, user_id=user_id, kind=Kind.mention, actor_id=actor_id, space_id=access.space.id,
               post_id=post_id if post_id is not None else _post_of(session, comment_id), comment_id=comment_id)


def _post_of(session: Session, comment_id: int | None) -> int | None:
    return session.scalar(select(Comment.post_id).where(Comment.id == comment_id)) if comment_id else None


# --- circles and memberships --------------------------------------------------------------

def _check_space(name: str, description: str, rules: str, what: str = "circle") -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput(f"A {what} needs a name.", field="name")
    if len(name) > 120:
        raise InvalidInput(f"A {what}'s name may have at most 120 characters.", field="name")
    if len(description) > 2_000:
        raise InvalidInput("The description may have at most 2,000 characters.", field="description")
    if len(rules) > 5_000:
        raise InvalidInput(f"The {'rules' if what == 'circle' else 'guidelines'} may have at most 5,000 characters.",
                           field="rules")
    return name


def create_circle(session: Session, actor: User, *, name: str, description: str = "",
                  rules: str = "", timezone: str | None = None, allow_member_dms: bool = False,
                  arm_id: int | None = None) -> Space:
    require_role(actor, CAN_CREATE_CIRCLE_ROLES, "create circles")
    name = _check_space(name, description, rules)
    timezone = identity.check_timezone(timezone or get_settings().default_timezone)
    if arm_id is not None and session.get(Arm, arm_id) is None:
        raise InvalidInput("No arm with that id.", field="arm_id")
    space = Space(kind=SpaceKind.circle, name=name, description=description.strip(),
                  rules=rules.strip(), timezone=timezone, allow_member_dms=allow_member_dms, arm_id=arm_id)
    session.add(space)
    session.flush()
    identity.audit(session, actor.id, "circle.created", "space", space.id)
    publish(session, "circle.created", Audience(space_id=space.id), actor_id=actor.id,
            object_type="space", object_id=space.id, data={"circle_id": space.id})
    if actor.role == Role.facilitator:
        add_member(session, actor, space, actor, CircleRole.facilitator)
    return space


# --- open communities -------------------------------------------------------------------------

PSEUDONYM_WORDS = (
    ("Calm", "Brave", "Gentle", "Quiet", "Bright", "Steady", "Kind", "Patient", "Hopeful", "Warm", "Clever", "Bold"),
    ("Heron", "Otter", "Robin", "Badger", "Willow", "River", "Fox", "Wren", "Maple", "Harbour", "Falcon", "Birch"),
)
PSEUDONYM_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._'-]*$")


def suggest_pseudonym(session: Session) -> str:
    """A random handle like "Calm Heron 42" that nobody uses yet."""
    import secrets

    for _ in range(20):
        candidate = (f"{secrets.choice(PSEUDONYM_WORDS[0])} {secrets.choice(PSEUDONYM_WORDS[1])} "
                     f"{secrets.randbelow(90) + 10}")
        if session.scalar(select(User.id).where(User.pseudonym == candidate)) is None:
            return candidate
    return f"Member {secrets.randbelow(900_000) + 100_000}"


def check_pseudonym(session: Session, user: User, pseudonym: str) -> str:
    """The name a person goes by in communities: 3 to 40 letters, digits and spaces, unused by anyone
    else, and never their display name (which would give their identity away)."""
    pseudonym = " ".join((pseudonym or "").split())
    if not pseudonym:
        raise InvalidInput("Choose a community name: it is how other members will see you.", field="pseudonym")
    if not 3 <= len(pseudonym) <= 40:
        raise InvalidInput("A community name has 3 to 40 characters.", field="pseudonym")
    if not PSEUDONYM_PATTERN.match(pseudonym):
        raise InvalidInput("A community name uses letters, digits, spaces, dots, dashes and apostrophes.",
                           field="pseudonym")
    folded = pseudonym.casefold()
    if folded in (user.display_name.casefold(), " ".join(user.display_name.split()).casefold(),
                  user.handle.casefold(), user.email.casefold()):
        raise InvalidInput("Your community name must not be your real name: choose another one.", field="pseudonym")
    taken = session.scalar(select(User.id).where(func.lower(User.pseudonym) == folded, User.id != user.id))
    if taken is not None:
        raise Conflict("Someone already uses that community name; choose another one.", field="pseudonym")
    return pseudonym


def create_community(session: Session, actor: User, *, name: str, description: str = "", rules: str = "",
                     allow_anonymous: bool = False, timezone: str | None = None) -> Space:
    """An open community on a condition or topic; its creator facilitates it (under their community name)."""
    require_role(actor, CAN_CREATE_CIRCLE_ROLES, "create communities")
    name = _check_space(name, description, rules, what="community")
    timezone = identity.check_timezone(timezone or get_settings().default_timezone)
    space = Space(kind=SpaceKind.community, name=name, description=description.strip(), rules=rules.strip(),
                  timezone=timezone, allow_anonymous=bool(allow_anonymous))
    session.add(space)
    session.flush()
    identity.audit(session, actor.id, "community.created", "space", space.id)
    publish(session, "community.created", Audience(space_id=space.id), actor_id=actor.id,
            object_type="space", object_id=space.id, data={"circle_id": space.id})
    if actor.pseudonym is None:
        actor.pseudonym = suggest_pseudonym(session)
    membership = add_member(session, actor, space, actor, CircleRole.facilitator)
    membership.rules_accepted_at = utcnow()
    return space


def join_community(session: Session, user: User, space: Space, *, pseudonym: str | None = None,
                   accept_guidelines: bool = False) -> Membership:
    """Join an open community: the person accepts its guidelines and goes by a community name."""
    existing = session.scalar(select(Membership.id).where(Membership.space_id == space.id,
                                                          Membership.user_id == user.id))
    if existing is not None:
        raise Conflict("You are already a member of this community.", field="community_id")
    if pseudonym is not None and pseudonym.strip():
        chosen = check_pseudonym(session, user, pseudonym)
    elif user.pseudonym is None:
        raise InvalidInput("Choose a community name: it is how other members will see you.", field="pseudonym")
    else:
        chosen = user.pseudonym
    if space.rules and not accept_guidelines:
        raise InvalidInput("Read the community's guidelines and accept them to join.", field="accept_guidelines")
    if chosen != user.pseudonym:
        user.pseudonym = chosen
    membership = add_member(session, user, space, user, CircleRole.member)
    membership.rules_accepted_at = utcnow()
    return membership


def leave_community(session: Session, user: User, space: Space) -> None:
    membership = session.scalar(select(Membership).where(Membership.space_id == space.id,
                                                         Membership.user_id == user.id))
    if membership is None:
        raise NotFound("You are not a member of this community.", field="community_id")
    if membership.role == CircleRole.facilitator:
        others = session.scalar(select(func.count(Membership.id)).where(
            Membership.space_id == space.id, Membership.role == CircleRole.facilitator, Membership.id != membership.id))
        if not others:
            raise Conflict("You are this community's only facilitator; it needs another before you leave.",
                           field="community_id")
    session.execute(delete(Membership).where(Membership.id == membership.id))
    identity.audit(session, user.id, "membership.left", "space", space.id)
    publish(session, "member.left", Audience(user_id=user.id), actor_id=user.id, object_type="space",
            object_id=space.id, data={"circle_id": space.id})


def _check_contamination(session: Session, space: Space, user: User) -> None:
    """A person belongs to at most one arm of a study: never to circles of two arms."""
    if space.arm_id is None:
        return
    study_id = session.scalar(select(Arm.study_id).where(Arm.id == space.arm_id))
    other = session.scalar(
        select(Arm.name)
        .join(Space, Space.arm_id == Arm.id)
        .join(Membership, Membership.space_id == Space.id)
        .where(Membership.user_id == user.id, Arm.study_id == study_id, Arm.id != space.arm_id)
        .limit(1)
    )
    if other is not None and user.role == Role.participant:
        raise Contamination(
            "This person is in another arm of the same study and cannot join this circle.",
            field="user_id",
        )


def add_member(session: Session, actor: User, space: Space, user: User,
               role: CircleRole = CircleRole.member) -> Membership:
    existing = session.scalar(
        select(Membership).where(Membership.space_id == space.id, Membership.user_id == user.id)
    )
    if existing is not None:
        raise Conflict(f"{user.display_name} is already in this circle.", field="user_id")
    if role in (CircleRole.facilitator,) and user.role not in (Role.facilitator, Role.admin):
        raise InvalidInput("Only facilitator accounts can facilitate a circle.", field="role")
    if role == CircleRole.clinician and user.role != Role.clinician:
        raise InvalidInput("Only clinician accounts can be a circle's clinician.", field="role")
    _check_contamination(session, space, user)
    last_post = session.scalar(select(func.max(Post.id)).where(Post.space_id == space.id)) or 0
    membership = Membership(space_id=space.id, user_id=user.id, role=role,
                            last_read_post_id=last_post if role != CircleRole.member else 0)
    session.add(membership)
    session.flush()
    identity.audit(session, actor.id, "membership.added", "space", space.id, detail=f"user {user.id} as {role.value}")
    publish(session, "member.joined", Audience(space_id=space.id), actor_id=actor.id,
            object_type="membership", object_id=membership.id,
            data={"circle_id": space.id, "user_id": user.id, "role": role.value})
    return membership


def set_member_role(session: Session, access: CircleAccess, membership: Membership, role: CircleRole) -> Membership:
    if not access.is_facilitator:
        raise Forbidden("Only the circle's facilitators can change roles.")
    if role not in (CircleRole.member, CircleRole.peer_supporter):
        raise InvalidInput("Facilitators can make a member a peer supporter or a member.", field="role")
    if membership.role not in (CircleRole.member, CircleRole.peer_supporter):
        raise InvalidInput("Only members and peer supporters can be changed here.", field="role")
    membership.role = role
    identity.audit(session, access.user.id, "membership.role_changed", "membership", membership.id, detail=role.value)
    publish(session, "member.role_changed", Audience(space_id=access.space.id), actor_id=access.user.id,
            object_type="membership", object_id=membership.id,
            data={"circle_id": access.space.id, "user_id": membership.user_id, "role": role.value})
    return membership


def accept_rules(session: Session, access: CircleAccess) -> None:
    if access.membership.rules_accepted_at is None:
        access.membership.rules_accepted_at = utcnow()
        publish(session, "circle.rules_accepted", Audience(user_id=access.user.id), actor_id=access.user.id,
                object_type="space", object_id=access.space.id, data={"circle_id": access.space.id})


def mark_read(session: Session, access: CircleAccess, up_to_post_id: int | None = None) -> None:
    if up_to_post_id is None:
        up_to_post_id = session.scalar(
            select(func.max(Post.id)).where(Post.space_id == access.space.id)
        ) or 0
    if up_to_post_id > access.membership.last_read_post_id:
        session.execute(
            update(Membership)
            .where(Membership.id == access.membership.id, Membership.last_read_post_id < up_to_post_id)
            .values(last_read_post_id=up_to_post_id)
        )
        access.membership.last_read_post_id = up_to_post_id


def sign_up_with_invitation(session: Session, *, token: str, email: str, password: str,
                            display_name: str, timezone: str, pronouns: str = "",
                            ip: str = "") -> tuple[User, Membership]:
    invitation = identity.find_invitation(session, token, for_update=True)
    space = session.get(Space, invitation.space_id)
    if space is None or space.archived_at is not None:
        raise NotFound("This invitation link is not valid.", field="token", code="invitation_not_found")
    user = identity.create_user(session, email=email, password=password, display_name=display_name,
                                timezone=timezone, pronouns=pronouns)
    claimed = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.uses < Invitation.max_uses)
        .values(uses=Invitation.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise identity.InvitationUnusable("This invitation has been used up. Ask your coach for a new link.",
                                          field="token")
    membership = add_member(session, user, space, user, CircleRole.member)
    identity.audit(session, user.id, "invitation.used", "invitation", invitation.id, ip=ip)
    return user, membership


# --- posts ------------------------------------------------------------------------------------

def _check_poll(question: str, options: Sequence[str], closes_at: dt.datetime | None) -> tuple[str, list[str]]:
    question = " ".join((question or "").split())
    if not question:
        raise InvalidInput("A poll needs a question.", field="poll.question")
    if len(question) > 300:
        raise InvalidInput("A poll question may have at most 300 characters.", field="poll.question")
    cleaned = [" ".join(o.split()) for o in options if o and o.strip()]
    if len(cleaned) < 2:
        raise InvalidInput("A poll needs at least 2 options.", field="poll.options")
    if len(cleaned) > 10:
        raise InvalidInput("A poll may have at most 10 options.", field="poll.options")
    if any(len(o) > 200 for o in cleaned):
        raise InvalidInput("A poll option may have at most 200 characters.", field="poll.options")
    if len({o.lower() for o in cleaned}) != len(cleaned):
        raise InvalidInput("Two poll options are the same.", field="poll.options")
    if closes_at is not None:
        if closes_at.tzinfo is None:
            raise InvalidInput("The closing time needs a time zone offset.", field="poll.closes_at")
        if closes_at <= utcnow():
            raise InvalidInput("The closing time is in the past.", field="poll.closes_at")
    return question, cleaned


def _audience(access: CircleAccess, screening: safety.Screening) -> Audience:
    """Held writing is announced to its author alone; the circle hears of it when it is released."""
    return Audience(user_id=access.user.id) if screening.held else Audience(space_id=access.space.id)


def create_post(session: Session, access: CircleAccess, body: str, *, poll_question: str | None = None,
                poll_options: Sequence[str] | None = None, poll_multiple: bool = False,
                poll_closes_at: dt.datetime | None = None, confirm_personal_information: bool = False,
                anonymous: bool = False, question: bool = False, for_professionals: bool = False) -> Post:
    """A post; ``question`` makes it a question (its top-level comments are answers, one of which the
    asker may accept), ``for_professionals`` a question that waits for a verified professional."""
    if not access.can_post:
        raise Forbidden("This circle is archived; nothing new can be posted.")
    body = check_body(body, limit=get_settings().post_max_chars)
    if anonymous and access.space.kind != SpaceKind.community:
        raise InvalidInput("Posts in a circle show their author; only open communities have anonymous posts.",
                           field="anonymous")
    if anonymous and not access.space.allow_anonymous:
        raise InvalidInput("This community does not allow anonymous posts.", field="anonymous")
    is_question = bool(question or for_professionals)
    has_poll = poll_options is not None or poll_question is not None
    if has_poll:
        poll_text, options = _check_poll(poll_question or "", poll_options or [], poll_closes_at)
    safety.check_can_write(session, access)
    safety.check_personal_information(body, confirm_personal_information)
    html, mentions = _render_with_mentions(session, access.space.id, body)
    post = Post(space_id=access.space.id, author_id=access.user.id, body=body, body_html=html,
                anonymous=bool(anonymous), is_question=is_question, for_professionals=bool(for_professionals))
    session.add(post)
    session.flush()
    post.screening = safety.screen(session, access, "post", post)
    if is_question and post.screening.escalation_id is not None:
        post.screening.message += (" Your question has gone to a clinician straight away instead of waiting for "
                                   "answers from the community.")
    if has_poll:
        poll = Poll(post_id=post.id, question=poll_text, multiple=poll_multiple, closes_at=poll_closes_at)
        poll.options = [PollOption(position=i, text=text) for i, text in enumerate(options)]
        session.add(poll)
        session.flush()
    if not post.screening.held:
        _record_mentions(session, access, mentions, post_id=post.id, anonymous=post.anonymous)
    mark_read_own(session, access, post.id)
    publish(session, "post.created", _audience(access, post.screening), actor_id=access.user.id,
            object_type="post", object_id=post.id,
            data={"circle_id": access.space.id, "post_id": post.id, "has_poll": has_poll,
                  "length": len(body), **({"question": True, "for_professionals": post.for_professionals}
                                          if is_question else {}), **_anonymous(post)})
    return post


def mark_read_own(session: Session, access: CircleAccess, post_id: int) -> None:
    """Posting moves one's own read marker only if everything before was read already."""
    unread_before = session.scalar(
        select(Post.id).where(
            Post.space_id == access.space.id,
            Post.id > access.membership.last_read_post_id,
            Post.id < post_id,
            Post.author_id != access.user.id,
            Post.deleted_at.is_(None),
        ).limit(1)
    )
    if unread_before is None:
        mark_read(session, access, post_id)


def edit_post(session: Session, access: CircleAccess, post: Post, body: str, *,
              confirm_personal_information: bool = False) -> Post:
    if not access.can_edit(post.author_id):
        raise Forbidden("Only the author can edit a post.")
    body = check_body(body, limit=get_settings().post_max_chars)
    if body == post.body:
        return post
    safety.check_personal_information(body, confirm_personal_information)
    session.add(PostRevision(post_id=post.id, body=post.body, written_at=post.edited_at or post.created_at))
    html, mentions = _render_with_mentions(session, access.space.id, body)
    post.body, post.body_html, post.edited_at = body, html, utcnow()
    session.flush()
    post.screening = safety.rescreen_edit(session, access, "post", post)
    _record_mentions(session, access, mentions, post_id=post.id, anonymous=post.anonymous)
    publish(session, "post.edited", _audience(access, post.screening) if post.visibility != "visible"
            else Audience(space_id=access.space.id), actor_id=access.user.id,
            object_type="post", object_id=post.id,
            data={"circle_id": access.space.id, "post_id": post.id, **_anonymous(post)})
    return post


def delete_post(session: Session, access: CircleAccess, post: Post) -> None:
    if not access.can_delete(post.author_id):
        raise Forbidden("Only the author or a facilitator can delete a post.")
    post.deleted_at = utcnow()
    post.pinned_at = None
    if post.author_id != access.user.id:
        identity.audit(session, access.user.id, "post.deleted_by_facilitator", "post", post.id)
    publish(session, "post.deleted", Audience(space_id=access.space.id), actor_id=access.user.id,
            object_type="post", object_id=post.id,
            data={"circle_id": access.space.id, "post_id": post.id, **_anonymous(post)})


def set_pinned(session: Session, access: CircleAccess, post: Post, pinned: bool) -> Post:
    if not access.can_pin:
        raise Forbidden("Only the circle's facilitators can pin posts.")
    if pinned == (post.pinned_at is not None):
        return post
    post.pinned_at = utcnow() if pinned else None
    publish(session, "post.pinned" if pinned else "post.unpinned", Audience(space_id=access.space.id),
            actor_id=access.user.id, object_type="post", object_id=post.id,
            data={"circle_id": access.space.id, "post_id": post.id})
    return post


# --- comments -------------------------------------------------------------------------------

def create_comment(session: Session, access: CircleAccess, post: Post, body: str,
                   parent_id: int | None = None, *, as_professional: bool = False) -> Comment:
    """A comment, or a reply to one. ``as_professional``: an answer to a question from a verified
    professional, marked as such (anyone else is refused, and nothing is written)."""
    if not access.can_post:
        raise Forbidden("This circle is archived; nothing new can be posted.")
    body = check_body(body, limit=MAX_COMMENT_CHARS, what="comment")
    if as_professional:
        check_professional_answer(session, access, post, parent_id)
    safety.check_can_write(session, access)
    if parent_id is not None:
        parent = session.get(Comment, parent_id)
        if parent is None or parent.post_id != post.id or parent.deleted_at is not None:
            raise InvalidInput("The comment you reply to is not on this post.", field="parent_id")
        if parent.parent_id is not None:
            raise InvalidInput("Replies go one level deep: reply to the first comment of the thread.",
                               field="parent_id")
    html, mentions = _render_with_mentions(session, access.space.id, body)
    comment = Comment(post_id=post.id, parent_id=parent_id, author_id=access.user.id, body=body, body_html=html,
                      as_professional=bool(as_professional))
    session.add(comment)
    session.execute(update(Post).where(Post.id == post.id).values(comment_count=Post.comment_count + 1))
    session.flush()
    session.refresh(post, ["comment_count"])
    comment.screening = safety.screen(session, access, "comment", comment)
    if not comment.screening.held:
        _record_mentions(session, access, mentions, comment_id=comment.id)
        _notify_replies(session, access, post, comment, parent_id)
    publish(session, "comment.created", _audience(access, comment.screening), actor_id=access.user.id,
            object_type="comment", object_id=comment.id,
            data={"circle_id": access.space.id, "post_id": post.id, "comment_id": comment.id,
                  "parent_id": parent_id, "post_author_id": post.author_id, "length": len(body),
                  **({"as_professional": True} if as_professional else {})})
    return comment


def check_professional_answer(session: Session, access: CircleAccess, post: Post, parent_id: int | None) -> None:
    from peerlift.professionals import service as professionals

    if professionals.verified(session, access.user.id) is None:
        raise Forbidden("Only verified professionals can answer as a professional. Apply from your profile, "
                        "or answer as yourself without \"as a professional\".", field="as_professional")
    if not post.is_question:
        raise InvalidInput("Only an answer to a question can be written as a professional; this post is not a "
                           "question.", field="as_professional")
    if parent_id is not None:
        raise InvalidInput("An answer as a professional answers the question itself, not a reply to a comment.",
                           field="as_professional")


def accept_answer(session: Session, access: CircleAccess, post: Post, comment_id: int | None) -> Post:
    """The asker accepts one answer to their question (or, with ``None``, none); the answerer hears of it."""
    if post.author_id != access.user.id:
        raise Forbidden("Only the person who asked can accept an answer.", field="post_id")
    if not post.is_question:
        raise InvalidInput("This post is not a question, so it has no answers to accept.", field="post_id")
    comment = None
    if comment_id is not None:
        comment = session.get(Comment, comment_id)
        if (comment is None or comment.post_id != post.id or comment.deleted_at is not None
                or comment.visibility != "visible"):
            raise InvalidInput("That comment is not an answer to this question.", field="comment_id")
        if comment.parent_id is not None:
            raise InvalidInput("Accept an answer to the question, not a reply to an answer.", field="comment_id")
        if comment.author_id == access.user.id:
            raise InvalidInput("Your own comment cannot be the accepted answer to your question.",
                               field="comment_id")
    if post.accepted_comment_id == comment_id:
        return post
    post.accepted_comment_id = comment_id
    session.flush()
    if comment is not None:
        notify(session, user_id=comment.author_id, kind=Kind.answer_accepted,
               actor_id=None if post.anonymous else access.user.id, space_id=access.space.id, post_id=post.id,
               comment_id=comment.id)
    publish(session, "answer.accepted" if comment is not None else "answer.unaccepted",
            Audience(space_id=access.space.id), actor_id=access.user.id, object_type="post", object_id=post.id,
            data={"circle_id": access.space.id, "post_id": post.id, "comment_id": comment_id, **_anonymous(post)})
    return post


def _notify_replies(session: Session, access: CircleAccess, post: Post, comment: Comment,
                    parent_id: int | None) -> None:
    """The author of the post (and of the comment replied to) hear of it; a facilitator's
    comment on a participant's post is an answer from their coach."""
    told: set[int] = set()
    targets = [post.author_id]
    if parent_id is not None:
        targets.append(session.scalar(select(Comment.author_id).where(Comment.id == parent_id)))
    for target in targets:
        if target in told or target == access.user.id:
            continue
        told.add(target)
        kind = Kind.facilitator_answer if access.is_facilitator and target == post.author_id else Kind.reply
        notify(session, user_id=target, kind=kind, actor_id=access.user.id, space_id=access.space.id,
               post_id=post.id, comment_id=comment.id)


def edit_comment(session: Session, access: CircleAccess, comment: Comment, body: str) -> Comment:
    if not access.can_edit(comment.author_id):
        raise Forbidden("Only the author can edit a comment.")
    body = check_body(body, limit=MAX_COMMENT_CHARS, what="comment")
    if body == comment.body:
        return comment
    session.add(CommentRevision(comment_id=comment.id, body=comment.body,
                                written_at=comment.edited_at or comment.created_at))
    html, mentions = _render_with_mentions(session, access.space.id, body)
    comment.body, comment.body_html, comment.edited_at = body, html, utcnow()
    session.flush()
    comment.screening = safety.rescreen_edit(session, access, "comment", comment)
    _record_mentions(session, access, mentions, comment_id=comment.id)
    publish(session, "comment.edited", Audience(space_id=access.space.id), actor_id=access.user.id,
            object_type="comment", object_id=comment.id,
            data={"circle_id": access.space.id, "post_id": comment.post_id, "comment_id": comment.id})
    return comment


def delete_comment(session: Session, access: CircleAccess, comment: Comment) -> None:
    if not access.can_delete(comment.author_id):
        raise Forbidden("Only the author or a facilitator can delete a comment.")
    comment.deleted_at = utcnow()
    session.execute(update(Post).where(Post.id == comment.post_id, Post.comment_count > 0)
                    .values(comment_count=Post.comment_count - 1))
    session.execute(update(Post).where(Post.id == comment.post_id, Post.accepted_comment_id == comment.id)
                    .values(accepted_comment_id=None))
    publish(session, "comment.deleted", Audience(space_id=access.space.id), actor_id=access.user.id,
            object_type="comment", object_id=comment.id,
            data={"circle_id": access.space.id, "post_id": comment.post_id, "comment_id": comment.id})


# --- reactions ------------------------------------------------------------------------------

def check_reaction(kind: str) -> str:
    if kind not in REACTIONS:
        raise InvalidInput(f"Unknown reaction {kind!r}; use one of: {', '.join(REACTIONS)}.", field="kind")
    return kind


def set_reaction(session: Session, access: CircleAccess, *, kind: str, on: bool,
                 post: Post | None = None, comment: Comment | None = None) -> bool:
    """Add (``on``) or remove a reaction; doing either twice changes nothing. Returns whether it changed."""
    check_reaction(kind)
    target = {"post_id": post.id} if post is not None else {"comment_id": comment.id}
    where = [Reaction.user_id == access.user.id, Reaction.kind == kind]
    where += [Reaction.post_id == post.id] if post is not None else [Reaction.comment_id == comment.id]
    existing = session.scalar(select(Reaction.id).where(*where))
    if on == (existing is not None):
        return False
    if on:
        session.add(Reaction(user_id=access.user.id, kind=kind, **target))
    else:
        session.execute(delete(Reaction).where(Reaction.id == existing))
    session.flush()
    post_id = post.id if post is not None else comment.post_id
    author_id = post.author_id if post is not None else comment.author_id
    if on and post is not None:
        notify(session, user_id=author_id, kind=Kind.reaction, actor_id=access.user.id, space_id=access.space.id,
               post_id=post.id)
    publish(session, "reaction.added" if on else "reaction.removed", Audience(space_id=access.space.id),
            actor_id=access.user.id, object_type="post" if post is not None else "comment",
            object_id=post.id if post is not None else comment.id,
            data={"circle_id": access.space.id, "post_id": post_id,
                  "comment_id": comment.id if comment is not None else None,
                  "kind": kind, "target_author_id": author_id})
    return True


# --- polls --------------------------------------------------------------------------------------

def vote(session: Session, access: CircleAccess, poll: Poll, option_ids: Sequence[int]) -> list[int]:
    """Record a person's choice; voting again replaces their earlier choice."""
    if poll.closes_at is not None and poll.closes_at <= utcnow():
        raise PollClosed("This poll has closed.", field="option_ids")
    chosen = list(dict.fromkeys(option_ids))
    if not chosen:
        raise InvalidInput("Choose an option.", field="option_ids")
    if not poll.multiple and len(chosen) > 1:
        raise InvalidInput("This poll takes one choice.", field="option_ids")
    valid = set(session.scalars(select(PollOption.id).where(PollOption.poll_id == poll.id)))
    missing = [o for o in chosen if o not in valid]
    if missing:
        raise InvalidInput(f"Option {missing[0]} is not in this poll.", field="option_ids")
    session.execute(delete(PollVote).where(PollVote.poll_id == poll.id, PollVote.user_id == access.user.id))
    for option_id in chosen:
        session.add(PollVote(poll_id=poll.id, option_id=option_id, user_id=access.user.id))
    session.flush()
    publish(session, "poll.voted", Audience(space_id=access.space.id), actor_id=access.user.id,
            object_type="poll", object_id=poll.id,
            data={"circle_id": access.space.id, "post_id": poll.post_id, "poll_id": poll.id})
    return chosen


# --- direct messages ---------------------------------------------------------------------------

def open_conversation(session: Session, sender: User, recipient: User) -> Conversation:
    if not may_message(session, sender, recipient):
        raise Forbidden("You can message the facilitators of your circles, and other members only where "
                        "the circle allows it.", field="user_id")
    low, high = sorted((sender.id, recipient.id))
    conversation = session.scalar(
        select(Conversation).where(Conversation.user_low_id == low, Conversation.user_high_id == high)
    )
    if conversation is None:
        conversation = Conversation(user_low_id=low, user_high_id=high)
        session.add(conversation)
        session.flush()
        publish(session, "conversation.opened", Audience(conversation_id=conversation.id), actor_id=sender.id,
                object_type="conversation", object_id=conversation.id,
                data={"conversation_id": conversation.id, "user_ids": [low, high]})
    return conversation


def send_message(session: Session, sender: User, conversation: Conversation, body: str) -> Message:
    body = check_body(body, limit=MAX_MESSAGE_CHARS, what="message")
    other_id = conversation.user_high_id if sender.id == conversation.user_low_id else conversation.user_low_id
    recipient = session.get(User, other_id)
    if recipient is None or not may_message(session, sender, recipient):
        raise Forbidden("You can no longer message this person.")
    message = Message(conversation_id=conversation.id, sender_id=sender.id, body=body, body_html=render(body))
    session.add(message)
    session.flush()
    conversation.last_message_id = message.id
    _mark_conversation_read(conversation, sender.id, message.id)
    message.screening = safety.screen_message(session, sender, conversation, message)
    publish(session, "message.created", Audience(conversation_id=conversation.id), actor_id=sender.id,
            object_type="message", object_id=message.id,
            data={"conversation_id": conversation.id, "message_id": message.id, "recipient_id": other_id,
                  "length": len(body)})
    notify(session, user_id=other_id, kind=Kind.message, actor_id=sender.id, conversation_id=conversation.id)
    return message


def _mark_conversation_read(conversation: Conversation, user_id: int, message_id: int) -> None:
    if user_id == conversation.user_low_id:
        conversation.low_last_read_id = max(conversation.low_last_read_id, message_id)
    else:
        conversation.high_last_read_id = max(conversation.high_last_read_id, message_id)


def mark_conversation_read(session: Session, user: User, conversation: Conversation) -> None:
    read = conversation.low_last_read_id if user.id == conversation.user_low_id else conversation.high_last_read_id
    if read >= conversation.last_message_id:
        return
    _mark_conversation_read(conversation, user.id, conversation.last_message_id)
    publish(session, "conversation.read", Audience(user_id=user.id), actor_id=user.id,
            object_type="conversation", object_id=conversation.id,
            data={"conversation_id": conversation.id, "message_id": conversation.last_message_id})
