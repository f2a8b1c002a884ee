"""JSON routes of circles, posts, comments, reactions, polls and direct messages.

Each route: authorise through ``policy``, call one service or query function, answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import TypeAdapter
from sqlalchemy import select

from peerlift.community import feed_cache, queries, service
from peerlift.community.models import Membership
from peerlift.community.schemas import (
    AcceptIn,
    CircleDetailOut,
    CircleIn,
    CircleOut,
    CommentIn,
    CommunityIn,
    CommunityOut,
    CommentOut,
    CommentPatch,
    ConversationIn,
    ConversationOut,
    FeedOut,
    InvitationIn,
    InvitationOut,
    JoinIn,
    MemberIn,
    MemberRoleIn,
    MessageIn,
    MessageOut,
    MessagesOut,
    PersonOut,
    PollOut,
    PostIn,
    PostOut,
    PostPatch,
    ReactionsOut,
    ReadIn,
    RevisionOut,
    VoteIn,
)
from peerlift.errors import Forbidden, NotFound, responses
from peerlift.identity import service as identity
from peerlift.identity.models import User
from peerlift.policy import (
    circle_access,
    comment_access,
    community_access,
    conversation_access,
    open_community,
    post_access,
    visible_user,
)
from peerlift.settings import get_settings
from peerlift.web.deps import DB, CurrentUser, Reader, run_read

router = APIRouter(prefix="/api/v1", tags=["community"])
R = responses


def _circle_out(db, user, space) -> CircleDetailOut:
    """A circle as its viewer sees it; an admin who created a circle they are not in sees role none."""
    summary = next((c for c in queries.my_circles(db, user, space.kind) if c.id == space.id), None)
    fields = summary.__dict__ if summary is not None else {
        "id": space.id, "name": space.name, "description": space.description, "timezone": space.timezone,
        "my_role": "none", "member_count": 0, "unread_count": 0, "rules_accepted": False, "archived": False}
    return CircleDetailOut(**fields, rules=space.rules, allow_member_dms=space.allow_member_dms)


# --- circles ------------------------------------------------------------------------------

@router.get("/circles", response_model=list[CircleOut], responses=R(401))
def list_circles(db: DB, user: CurrentUser):
    return queries.my_circles(db, user)


@router.post("/circles", response_model=CircleDetailOut, status_code=201, responses=R(401, 403, 422))
def create_circle(body: CircleIn, db: DB, user: CurrentUser):
    return _circle_out(db, user, service.create_circle(db, user, **body.model_dump()))


@router.get("/circles/{circle_id}", response_model=CircleDetailOut, responses=R(401, 404))
def get_circle(circle_id: int, db: DB, user: CurrentUser):
    return _circle_out(db, user, circle_access(db, user, circle_id).space)


@router.get("/circles/{circle_id}/members", response_model=list[PersonOut], responses=R(401, 404))
def list_members(circle_id: int, db: DB, user: CurrentUser):
    return queries.members(db, circle_access(db, user, circle_id))


@router.post("/circles/{circle_id}/members", response_model=PersonOut, status_code=201,
             responses=R(401, 403, 404, 409, 422))
def add_member(circle_id: int, body: MemberIn, db: DB, user: CurrentUser):
    access = circle_access(db, user, circle_id)
    if not access.is_facilitator:
        raise Forbidden("Only the circle's facilitators can add members.")
    person = db.scalar(select(User).where(User.email == body.email.strip().lower()))
    if person is None:
        raise NotFound("No account with that email address; send an invitation instead.", field="email")
    membership = service.add_member(db, user, access.space, person, body.role)
    return PersonOut(id=person.id, display_name=person.display_name, handle=person.handle,
                     pronouns=person.pronouns, circle_role=membership.role.value)


@router.patch("/circles/{circle_id}/members/{user_id}", response_model=PersonOut, responses=R(401, 403, 404, 422))
def set_member_role(circle_id: int, user_id: int, body: MemberRoleIn, db: DB, user: CurrentUser):
    access = circle_access(db, user, circle_id)
    membership = db.scalar(select(Membership).where(Membership.space_id == circle_id, Membership.user_id == user_id))
    if membership is None:
        raise NotFound("No member with that id in this circle.", field="user_id")
    service.set_member_role(db, access, membership, body.role)
    person = db.get(User, user_id)
    return PersonOut(id=person.id, display_name=person.display_name, handle=person.handle,
                     pronouns=person.pronouns, circle_role=membership.role.value)


@router.post("/circles/{circle_id}/read", status_code=204, responses=R(401, 403, 404, 422))
def mark_read(circle_id: int, body: ReadIn, db: DB, user: CurrentUser):
    service.mark_read(db, circle_access(db, user, circle_id), body.post_id)
    return Response(status_code=204)


@router.post("/circles/{circle_id}/rules/accept", status_code=204, responses=R(401, 403, 404))
def accept_rules(circle_id: int, db: DB, user: CurrentUser):
    service.accept_rules(db, circle_access(db, user, circle_id))
    return Response(status_code=204)


@router.post("/circles/{circle_id}/invitations", response_model=InvitationOut, status_code=201,
             responses=R(401, 403, 404, 422))
def create_invitation(circle_id: int, body: InvitationIn, db: DB, user: CurrentUser):
    access = circle_access(db, user, circle_id)
    if not access.can_invite:
        raise Forbidden("Only the circle's facilitators can invite people.")
    token, invitation = identity.create_invitation(db, space_id=circle_id, created_by=user,
                                                   days_valid=body.days_valid, max_uses=body.max_uses,
                                                   note=body.note, email=body.email)
    return InvitationOut(id=invitation.id, circle_id=circle_id, token=token,
                         url=f"{get_settings().base_url.rstrip('/')}/join/{token}",
                         expires_at=invitation.expires_at, max_uses=invitation.max_uses)


# --- posts ----------------------------------------------------------------------------------

@router.get("/circles/{circle_id}/posts", response_model=FeedOut, responses=R(401, 404, 422))
async def list_posts(circle_id: int, db: DB, user: Reader,
               before: Annotated[int | None, Query(description="cursor: next_cursor of the previous page")] = None,
               limit: Annotated[int, Query(ge=1, le=100)] = 20):
    return await run_read(db, lambda: _feed_answer(db, circle_access(db, user, circle_id), before, limit))


# The feeds are the busiest reads: their JSON is written straight from the views the server built,
# in FeedOut's shape (a test holds the two to the same fields and the same output), without
# validating them again (a tenth of a read's work), and kept for the reader while the space's content
# version says the page is unchanged (feed_cache.py).
_FEED_JSON = TypeAdapter(queries.FeedPage)


def _feed_answer(db, access, before: int | None, limit: int) -> Response:
    cache = feed_cache.cache_for(db.get_bind())
    key = feed_cache.key(access, before, limit)
    body = cache.get(key) if cache is not None else None
    if body is None:
        page = queries.feed(db, access, before=before, limit=limit)
        body = _FEED_JSON.dump_json(page)
        if cache is not None:
            cache.put(key, body, until=feed_cache.changes_at(page))
    return Response(body, media_type="application/json")


@router.post("/circles/{circle_id}/posts", response_model=PostOut, status_code=201, responses=R(401, 403, 404, 422, 429))
def create_post(circle_id: int, body: PostIn, db: DB, user: CurrentUser):
    access = circle_access(db, user, circle_id)
    poll = body.poll
    post = service.create_post(
        db, access, body.body,
        poll_question=poll.question if poll else None, poll_options=poll.options if poll else None,
        poll_multiple=poll.multiple if poll else False, poll_closes_at=poll.closes_at if poll else None,
        confirm_personal_information=body.confirm_personal_information, anonymous=body.anonymous,
        question=body.question, for_professionals=body.for_professionals,
    )
    return _with_screening(queries.post_view(db, access, post), post)


# --- open communities ---------------------------------------------------------------------------

def _community_out(db, user, community_id: int) -> CommunityOut:
    return queries.communities(db, user, only=community_id)[0]


@router.get("/communities", response_model=list[CommunityOut], responses=R(401))
def list_communities(db: DB, user: CurrentUser):
    return queries.communities(db, user)


@router.post("/communities", response_model=CommunityOut, status_code=201, responses=R(401, 403, 422))
def create_community(body: CommunityIn, db: DB, user: CurrentUser):
    space = service.create_community(db, user, **body.model_dump())
    return _community_out(db, user, space.id)


@router.get("/communities/{community_id}", response_model=CommunityOut, responses=R(401, 404))
def get_community(community_id: int, db: DB, user: CurrentUser):
    return _community_out(db, user, open_community(db, community_id).id)


@router.post("/communities/{community_id}/membership", response_model=CommunityOut, status_code=201,
             responses=R(401, 404, 409, 422))
def join_community(community_id: int, body: JoinIn, db: DB, user: CurrentUser):
    space = open_community(db, community_id)
    service.join_community(db, user, space, pseudonym=body.pseudonym, accept_guidelines=body.accept_guidelines)
    return _community_out(db, user, space.id)


@router.delete("/communities/{community_id}/membership", status_code=204, responses=R(401, 404, 409))
def leave_community(community_id: int, db: DB, user: CurrentUser):
    service.leave_community(db, user, open_community(db, community_id))
    return Response(status_code=204)


@router.get("/communities/{community_id}/posts", response_model=FeedOut, responses=R(401, 404, 422))
async def list_community_posts(community_id: int, db: DB, user: Reader,
                               before: Annotated[int | None, Query(description="cursor: next_cursor of the previous page")] = None,
                               limit: Annotated[int, Query(ge=1, le=100)] = 20):
    """The community's feed, for its members only (the same feed as a circle's, read the same way)."""
    return await run_read(db, lambda: _feed_answer(db, community_access(db, user, community_id), before, limit))


@router.post("/communities/{community_id}/posts", response_model=PostOut, status_code=201,
             responses=R(401, 403, 404, 422, 429))
def create_community_post(community_id: int, body: PostIn, db: DB, user: CurrentUser):
    community_access(db, user, community_id)
    return create_post(community_id, body, db, user)


def _with_screening(view, obj) -> dict:
    out = dict(view.__dict__)
    screening = getattr(obj, "screening", None)
    out["safety"] = screening.as_dict() if screening is not None else None
    return out


@router.get("/posts/{post_id}", response_model=PostOut, responses=R(401, 404))
def get_post(post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    return queries.post_view(db, access, post)


@router.patch("/posts/{post_id}", response_model=PostOut, responses=R(401, 403, 404, 422))
def edit_post(post_id: int, body: PostPatch, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    service.edit_post(db, access, post, body.body, confirm_personal_information=body.confirm_personal_information)
    return _with_screening(queries.post_view(db, access, post), post)


@router.delete("/posts/{post_id}", status_code=204, responses=R(401, 403, 404))
def delete_post(post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    service.delete_post(db, access, post)
    return Response(status_code=204)


@router.get("/posts/{post_id}/history", response_model=list[RevisionOut], responses=R(401, 404))
def post_history(post_id: int, db: DB, user: CurrentUser):
    _access, post = post_access(db, user, post_id)
    return [RevisionOut(body=body, written_at=at) for body, at in queries.post_history(db, post)]


@router.put("/posts/{post_id}/pin", response_model=PostOut, responses=R(401, 403, 404))
def pin_post(post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    service.set_pinned(db, access, post, True)
    return queries.post_view(db, access, post)


@router.delete("/posts/{post_id}/pin", response_model=PostOut, responses=R(401, 403, 404))
def unpin_post(post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    service.set_pinned(db, access, post, False)
    return queries.post_view(db, access, post)


@router.put("/posts/{post_id}/accepted-answer", response_model=PostOut, responses=R(401, 403, 404, 422))
def accept_answer(post_id: int, body: AcceptIn, db: DB, user: CurrentUser):
    """The asker accepts one answer to their question (``comment_id``), or none (null)."""
    access, post = post_access(db, user, post_id)
    service.accept_answer(db, access, post, body.comment_id)
    return queries.post_view(db, access, post)


@router.get("/communities/{community_id}/awaiting-professional", response_model=list[PostOut],
            responses=R(401, 404))
def awaiting_professional(community_id: int, db: DB, user: CurrentUser):
    """Questions for professionals that no verified professional has answered yet (oldest first);
    questions that went to the clinical team are not among them."""
    return queries.awaiting_professional(db, community_access(db, user, community_id))


# --- comments -------------------------------------------------------------------------------

@router.get("/posts/{post_id}/comments", response_model=list[CommentOut], responses=R(401, 404))
def list_comments(post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    return queries.comments(db, access, post)


@router.post("/posts/{post_id}/comments", response_model=CommentOut, status_code=201, responses=R(401, 403, 404, 422, 429))
def create_comment(post_id: int, body: CommentIn, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    comment = service.create_comment(db, access, post, body.body, body.parent_id,
                                     as_professional=body.as_professional)
    return _with_screening(queries.comment_view(db, access, comment), comment)


@router.patch("/comments/{comment_id}", response_model=CommentOut, responses=R(401, 403, 404, 422))
def edit_comment(comment_id: int, body: CommentPatch, db: DB, user: CurrentUser):
    access, _post, comment = comment_access(db, user, comment_id)
    service.edit_comment(db, access, comment, body.body)
    return queries.comment_view(db, access, comment)


@router.get("/comments/{comment_id}/history", response_model=list[RevisionOut], responses=R(401, 404))
def comment_history(comment_id: int, db: DB, user: CurrentUser):
    _access, _post, comment = comment_access(db, user, comment_id)
    return [RevisionOut(body=body, written_at=at) for body, at in queries.comment_history(db, comment)]


@router.delete("/comments/{comment_id}", status_code=204, responses=R(401, 403, 404))
def delete_comment(comment_id: int, db: DB, user: CurrentUser):
    access, _post, comment = comment_access(db, user, comment_id)
    service.delete_comment(db, access, comment)
    return Response(status_code=204)


# --- reactions ------------------------------------------------------------------------------

def _post_reactions(db, access, post, changed) -> ReactionsOut:
    view = queries.post_view(db, access, post)
    return ReactionsOut(reactions=view.reactions, my_reactions=view.my_reactions, changed=changed)


@router.put("/posts/{post_id}/reactions/{kind}", response_model=ReactionsOut, responses=R(401, 403, 404, 422))
def add_post_reaction(post_id: int, kind: str, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    changed = service.set_reaction(db, access, kind=kind, on=True, post=post)
    return _post_reactions(db, access, post, changed)


@router.delete("/posts/{post_id}/reactions/{kind}", response_model=ReactionsOut, responses=R(401, 403, 404, 422))
def remove_post_reaction(post_id: int, kind: str, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    changed = service.set_reaction(db, access, kind=kind, on=False, post=post)
    return _post_reactions(db, access, post, changed)


def _comment_reactions(db, access, comment, changed) -> ReactionsOut:
    view = queries.comment_view(db, access, comment)
    return ReactionsOut(reactions=view.reactions, my_reactions=view.my_reactions, changed=changed)


@router.put("/comments/{comment_id}/reactions/{kind}", response_model=ReactionsOut, responses=R(401, 403, 404, 422))
def add_comment_reaction(comment_id: int, kind: str, db: DB, user: CurrentUser):
    access, _post, comment = comment_access(db, user, comment_id)
    changed = service.set_reaction(db, access, kind=kind, on=True, comment=comment)
    return _comment_reactions(db, access, comment, changed)


@router.delete("/comments/{comment_id}/reactions/{kind}", response_model=ReactionsOut,
               responses=R(401, 403, 404, 422))
def remove_comment_reaction(comment_id: int, kind: str, db: DB, user: CurrentUser):
    access, _post, comment = comment_access(db, user, comment_id)
    changed = service.set_reaction(db, access, kind=kind, on=False, comment=comment)
    return _comment_reactions(db, access, comment, changed)


# --- polls -------------------------------------------------------------------------------------

@router.get("/polls/{poll_id}", response_model=PollOut, responses=R(401, 404))
def get_poll(poll_id: int, db: DB, user: CurrentUser):
    access, poll = queries.poll_for_access(db, user, poll_id)
    return queries.poll_view(db, access, poll)


@router.post("/polls/{poll_id}/votes", response_model=PollOut, responses=R(401, 403, 404, 409, 422))
def vote(poll_id: int, body: VoteIn, db: DB, user: CurrentUser):
    access, poll = queries.poll_for_access(db, user, poll_id)
    service.vote(db, access, poll, body.option_ids)
    return queries.poll_view(db, access, poll)


# --- direct messages ----------------------------------------------------------------------------

@router.get("/conversations", response_model=list[ConversationOut], responses=R(401))
def list_conversations(db: DB, user: CurrentUser):
    return queries.conversations(db, user)


@router.post("/conversations", response_model=ConversationOut, status_code=201, responses=R(401, 403, 404, 422))
def open_conversation(body: ConversationIn, db: DB, user: CurrentUser):
    other = visible_user(db, user, body.user_id)
    conversation = service.open_conversation(db, user, other)
    return next(c for c in queries.conversations(db, user) if c.id == conversation.id)


@router.get("/conversations/{conversation_id}/messages", response_model=MessagesOut, responses=R(401, 404, 422))
def list_messages(conversation_id: int, db: DB, user: CurrentUser,
                  before: Annotated[int | None, Query()] = None,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50):
    conversation = conversation_access(db, user, conversation_id)
    views, cursor = queries.messages(db, user, conversation, before=before, limit=limit)
    return MessagesOut(messages=views, next_cursor=cursor)


@router.post("/conversations/{conversation_id}/messages", response_model=MessageOut, status_code=201,
             responses=R(401, 403, 404, 422))
def send_message(conversation_id: int, body: MessageIn, db: DB, user: CurrentUser):
    conversation = conversation_access(db, user, conversation_id)
    message = service.send_message(db, user, conversation, body.body)
    return MessageOut(id=message.id, conversation_id=conversation.id,
                      sender=PersonOut(id=user.id, display_name=user.display_name, handle=user.handle,
                                       pronouns=user.pronouns),
                      body=message.body, body_html=message.body_html, created_at=message.created_at, mine=True,
                      safety=message.screening.as_dict())


@router.post("/conversations/{conversation_id}/read", status_code=204, responses=R(401, 403, 404))
def read_conversation(conversation_id: int, db: DB, user: CurrentUser):
    service.mark_conversation_read(db, user, conversation_access(db, user, conversation_id))
    return Response(status_code=204)
