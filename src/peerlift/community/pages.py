"""HTML routes of circles, posts, comments, reactions, polls and direct messages.

They work without JavaScript: every action is a form that posts and redirects back.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from peerlift.community import queries, service
from peerlift.community.models import CircleRole, Membership
from peerlift.db import transaction
from peerlift.errors import Forbidden, InvalidInput, NotFound, PeerliftError
from peerlift.identity import service as identity
from peerlift.identity.models import User
from peerlift.policy import (
    CAN_CREATE_CIRCLE_ROLES,
    circle_access,
    comment_access,
    conversation_access,
    open_community,
    post_access,
    visible_user,
)
from peerlift.settings import get_settings
from peerlift.web.deps import DB, CurrentUser, local_path
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=200_000)]


def _back(target: str | None, fallback: str) -> RedirectResponse:
    return RedirectResponse(local_path(target, fallback), status_code=303)


# --- circles ------------------------------------------------------------------------------

@router.get("/circles")
def circles(request: Request, db: DB, user: CurrentUser):
    return page(request, "circles.html", {"circles": queries.my_circles(db, user),
                                          "can_create": user.role in CAN_CREATE_CIRCLE_ROLES})


@router.get("/circles/new")
def new_circle_form(request: Request, user: CurrentUser):
    if user.role not in CAN_CREATE_CIRCLE_ROLES:
        raise Forbidden("Only facilitators and admins create circles.")
    return page(request, "circle_new.html", {"form": {"timezone": user.timezone}})


@router.post("/circles/new")
def create_circle(request: Request, db: DB, user: CurrentUser,
                  name: Annotated[str, Form(max_length=200)] = "",
                  description: Annotated[str, Form(max_length=2000)] = "",
                  rules: Annotated[str, Form(max_length=5000)] = "",
                  timezone: Annotated[str, Form(max_length=64)] = "",
                  allow_member_dms: Annotated[bool, Form()] = False):
    try:
        space = service.create_circle(db, user, name=name, description=description, rules=rules,
                                      timezone=timezone or None, allow_member_dms=allow_member_dms)
    except PeerliftError as exc:
        if isinstance(exc, Forbidden):
            raise
        db.rollback()
        return page(request, "circle_new.html", {"error": exc.message, "field": exc.field, "form": {
            "name": name, "description": description, "rules": rules, "timezone": timezone,
            "allow_member_dms": allow_member_dms}}, status_code=exc.status_code)
    return RedirectResponse(f"/circles/{space.id}", status_code=303)


def _feed_page(request: Request, db, user, access, *, before: int | None, error: str | None = None,
               draft: dict | None = None, status: int = 200):
    feed = queries.feed(db, access, before=before, limit=get_settings().feed_page_size)
    return page(request, "circle.html", {
        "circle": access.space, "access": access, "feed": feed, "before": before,
        "error": error, "draft": draft or {},
    }, status_code=status)


@router.get("/circles/{circle_id}")
def circle(request: Request, circle_id: int, db: DB, user: CurrentUser, before: int | None = None):
    access = circle_access(db, user, circle_id)
    if access.space.rules and access.membership.rules_accepted_at is None:
        return page(request, "rules.html", {"circle": access.space})
    response = _feed_page(request, db, user, access, before=before)
    if before is None:
        with transaction() as write:
            service.mark_read(write, circle_access(write, user, circle_id))
    return response


@router.post("/circles/{circle_id}/rules")
def accept_rules(circle_id: int, db: DB, user: CurrentUser):
    service.accept_rules(db, circle_access(db, user, circle_id))
    return RedirectResponse(f"/circles/{circle_id}", status_code=303)


# --- open communities ------------------------------------------------------------------------

@router.get("/communities")
def communities(request: Request, db: DB, user: CurrentUser):
    return page(request, "communities.html", {"communities": queries.communities(db, user),
                                              "can_create": user.role in CAN_CREATE_CIRCLE_ROLES})


@router.get("/communities/new")
def new_community_form(request: Request, user: CurrentUser):
    if user.role not in CAN_CREATE_CIRCLE_ROLES:
        raise Forbidden("Only facilitators and admins create communities.")
    return page(request, "community_new.html", {"form": {}})


@router.post("/communities/new")
def create_community(request: Request, db: DB, user: CurrentUser,
                     name: Annotated[str, Form(max_length=200)] = "",
                     description: Annotated[str, Form(max_length=2000)] = "",
                     rules: Annotated[str, Form(max_length=5000)] = "",
                     allow_anonymous: Annotated[bool, Form()] = False):
    try:
        space = service.create_community(db, user, name=name, description=description, rules=rules,
                                         allow_anonymous=allow_anonymous)
    except PeerliftError as exc:
        if isinstance(exc, Forbidden):
            raise
        db.rollback()
        return page(request, "community_new.html", {"error": exc.message, "field": exc.field, "form": {
            "name": name, "description": description, "rules": rules, "allow_anonymous": allow_anonymous}},
            status_code=exc.status_code)
    return RedirectResponse(f"/communities/{space.id}", status_code=303)


def _community_page(request: Request, db, user, community_id: int, *, error: str | None = None,
                    field: str | None = None, pseudonym: str | None = None, status: int = 200):
    summary = queries.communities(db, user, only=community_id)[0]
    suggestion = pseudonym if pseudonym is not None else (user.pseudonym or service.suggest_pseudonym(db))
    return page(request, "community.html", {"community": summary, "pseudonym": suggestion,
                                            "has_pseudonym": user.pseudonym is not None,
                                            "error": error, "field": field}, status_code=status)


@router.get("/communities/{community_id}")
def community(request: Request, community_id: int, db: DB, user: CurrentUser):
    """What anyone signed in sees of a community: its description and guidelines, and the way in."""
    open_community(db, community_id)
    return _community_page(request, db, user, community_id)


@router.post("/communities/{community_id}/join")
def join_community(request: Request, community_id: int, db: DB, user: CurrentUser,
                   pseudonym: Annotated[str, Form(max_length=200)] = "",
                   accept_guidelines: Annotated[bool, Form()] = False):
    space = open_community(db, community_id)
    try:
        service.join_community(db, user, space, pseudonym=pseudonym, accept_guidelines=accept_guidelines)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        return _community_page(request, db, user, community_id, error=exc.message, field=exc.field,
                               pseudonym=pseudonym, status=exc.status_code)
    return RedirectResponse(f"/circles/{community_id}", status_code=303)


@router.post("/communities/{community_id}/leave")
def leave_community(request: Request, community_id: int, db: DB, user: CurrentUser):
    space = open_community(db, community_id)
    try:
        service.leave_community(db, user, space)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        return _community_page(request, db, user, community_id, error=exc.message, field=exc.field,
                               status=exc.status_code)
    return RedirectResponse("/communities", status_code=303)


def _parse_closes(value: str, tz: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        local = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput("The closing time is not a date and time.", field="poll.closes_at")
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(tz))
    return local


@router.post("/circles/{circle_id}/posts")
def create_post(request: Request, circle_id: int, db: DB, user: CurrentUser, body: Text = "",
                poll_question: Annotated[str, Form(max_length=300)] = "",
                poll_options: Annotated[str, Form(max_length=5000)] = "",
                poll_multiple: Annotated[bool, Form()] = False,
                poll_closes_at: Annotated[str, Form(max_length=40)] = "",
                confirm_personal_information: Annotated[bool, Form()] = False,
                anonymous: Annotated[bool, Form()] = False, question: Annotated[bool, Form()] = False,
                for_professionals: Annotated[bool, Form()] = False):
    access = circle_access(db, user, circle_id)
    has_poll = bool(poll_question.strip() or poll_options.strip())
    try:
        post = service.create_post(
            db, access, body,
            poll_question=poll_question if has_poll else None,
            poll_options=poll_options.splitlines() if has_poll else None,
            poll_multiple=poll_multiple,
            poll_closes_at=_parse_closes(poll_closes_at, user.timezone) if has_poll else None,
            confirm_personal_information=confirm_personal_information, anonymous=anonymous,
            question=question, for_professionals=for_professionals,
        )
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        access = circle_access(db, user, circle_id)
        return _feed_page(request, db, user, access, before=None, error=exc.message, status=exc.status_code,
                          draft={"body": body, "poll_question": poll_question, "poll_options": poll_options,
                                 "poll_multiple": poll_multiple, "poll_closes_at": poll_closes_at,
                                 "anonymous": anonymous, "question": question,
                                 "for_professionals": for_professionals,
                                 "personal_information": exc.code == "personal_information"})
    return _after_write(request, post.screening, "post", f"/circles/{circle_id}#post-{post.id}")


def _after_write(request: Request, screening, what: str, target: str):
    """Writing that was held or suggests risk answers with a notice (support, crisis lines); the rest
    goes straight back."""
    if screening.held or screening.message:
        return page(request, "safety/notice.html", {"s": screening, "what": what, "back": target})
    return RedirectResponse(target, status_code=303)


@router.get("/circles/{circle_id}/members")
def members(request: Request, circle_id: int, db: DB, user: CurrentUser):
    access = circle_access(db, user, circle_id)
    from peerlift.safety.queries import gated_members

    staff = access.role in (CircleRole.facilitator, CircleRole.clinician)
    return page(request, "members.html", {"circle": access.space, "access": access,
                                          "members": queries.members(db, access),
                                          "gated": gated_members(db, access.space_id) if staff else set()})


@router.post("/circles/{circle_id}/members/{user_id}/role")
def set_role(circle_id: int, user_id: int, db: DB, user: CurrentUser,
             role: Annotated[CircleRole, Form()]):
    access = circle_access(db, user, circle_id)
    membership = db.scalar(select(Membership).where(Membership.space_id == circle_id, Membership.user_id == user_id))
    if membership is None:
        raise NotFound("No member with that id in this circle.")
    service.set_member_role(db, access, membership, role)
    return RedirectResponse(f"/circles/{circle_id}/members", status_code=303)


@router.get("/circles/{circle_id}/invitations")
def invitations(request: Request, circle_id: int, db: DB, user: CurrentUser):
    access = circle_access(db, user, circle_id)
    if not access.can_invite:
        raise Forbidden("Only the circle's facilitators can invite people.")
    return page(request, "invite.html", {"circle": access.space, "link": None})


@router.post("/circles/{circle_id}/invitations")
def create_invitation(request: Request, circle_id: int, db: DB, user: CurrentUser,
                      days_valid: Annotated[int, Form()] = 7, max_uses: Annotated[int, Form()] = 30,
                      note: Annotated[str, Form(max_length=200)] = "",
                      email: Annotated[str, Form(max_length=254)] = ""):
    access = circle_access(db, user, circle_id)
    if not access.can_invite:
        raise Forbidden("Only the circle's facilitators can invite people.")
    try:
        token, invitation = identity.create_invitation(db, space_id=circle_id, created_by=user,
                                                       days_valid=days_valid, max_uses=max_uses, note=note,
                                                       email=email.strip() or None)
    except PeerliftError as exc:
        db.rollback()
        return page(request, "invite.html", {"circle": access.space, "link": None, "error": exc.message},
                    status_code=exc.status_code)
    link = f"{get_settings().base_url.rstrip('/')}/join/{token}"
    return page(request, "invite.html", {"circle": access.space, "link": link, "invitation": invitation,
                                         "emailed": email.strip()})


# --- posts ------------------------------------------------------------------------------------

def _post_page(request: Request, db, user, access, post, *, error: str | None = None,
               draft: str = "", status: int = 200):
    from peerlift.experience.queries import post_extras
    from peerlift.professionals.service import verified_labels

    comments = queries.comments(db, access, post)
    return page(request, "post.html", {
        "circle": access.space, "access": access, "post": queries.post_view(db, access, post),
        "comments": comments, "error": error, "draft": draft,
        "extras": post_extras(db, access, post.id, comments),
        "my_profession": verified_labels(db, [user.id]).get(user.id) if post.is_question else None,
    }, status_code=status)


@router.get("/posts/{post_id}")
def post(request: Request, post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    return _post_page(request, db, user, access, post)


@router.get("/posts/{post_id}/card")
def post_card(request: Request, post_id: int, db: DB, user: CurrentUser, back: str = "", full: int = 0):
    """One post card, for the live feed to insert or replace."""
    access, post = post_access(db, user, post_id)
    target = local_path(back, f"/posts/{post_id}")
    return page(request, "fragments/post_card.html", {"post": queries.post_view(db, access, post),
                                                      "access": access, "back": target, "full": bool(full),
                                                      "nav": {}})


@router.get("/posts/{post_id}/thread")
def post_thread(request: Request, post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    from peerlift.experience.queries import post_extras

    comments = queries.comments(db, access, post)
    return page(request, "fragments/thread.html", {"post": queries.post_view(db, access, post), "access": access,
                                                   "comments": comments, "nav": {},
                                                   "extras": post_extras(db, access, post.id, comments)})


@router.post("/posts/{post_id}/comments")
def create_comment(request: Request, post_id: int, db: DB, user: CurrentUser, body: Text = "",
                   parent_id: Annotated[int | None, Form()] = None,
                   as_professional: Annotated[bool, Form()] = False):
    access, post = post_access(db, user, post_id)
    try:
        comment = service.create_comment(db, access, post, body, parent_id, as_professional=as_professional)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        access, post = post_access(db, user, post_id)
        return _post_page(request, db, user, access, post, error=exc.message, draft=body, status=exc.status_code)
    return _after_write(request, comment.screening, "comment", f"/posts/{post_id}#comment-{comment.id}")


@router.post("/posts/{post_id}/accept")
def accept_answer(request: Request, post_id: int, db: DB, user: CurrentUser,
                  comment_id: Annotated[str, Form(max_length=20)] = ""):
    """The asker accepts an answer (an empty ``comment_id`` accepts none)."""
    access, post = post_access(db, user, post_id)
    chosen = int(comment_id) if comment_id.strip().isdigit() else None
    if comment_id.strip() and chosen is None:
        raise InvalidInput("That comment is not an answer to this question.", field="comment_id")
    try:
        service.accept_answer(db, access, post, chosen)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        access, post = post_access(db, user, post_id)
        return _post_page(request, db, user, access, post, error=exc.message, status=exc.status_code)
    return RedirectResponse(f"/posts/{post_id}#comment-{chosen}" if chosen else f"/posts/{post_id}", status_code=303)


@router.get("/communities/{community_id}/awaiting")
def awaiting_professional(request: Request, community_id: int, db: DB, user: CurrentUser):
    """The community's questions for professionals that no verified professional has answered yet."""
    from peerlift.professionals.service import verified_labels
    from peerlift.policy import community_access

    access = community_access(db, user, community_id)
    return page(request, "awaiting.html", {"circle": access.space, "access": access,
                                           "questions": queries.awaiting_professional(db, access),
                                           "my_profession": verified_labels(db, [user.id]).get(user.id)})


@router.get("/posts/{post_id}/edit")
def edit_post_form(request: Request, post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    if not access.can_edit(post.author_id):
        raise Forbidden("Only the author can edit a post.")
    return page(request, "edit.html", {"what": "post", "action": f"/posts/{post_id}/edit", "body": post.body,
                                       "cancel": f"/posts/{post_id}"})


@router.post("/posts/{post_id}/edit")
def edit_post(request: Request, post_id: int, db: DB, user: CurrentUser, body: Text = ""):
    access, post = post_access(db, user, post_id)
    try:
        service.edit_post(db, access, post, body)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        return page(request, "edit.html", {"what": "post", "action": f"/posts/{post_id}/edit", "body": body,
                                           "cancel": f"/posts/{post_id}", "error": exc.message},
                    status_code=exc.status_code)
    return RedirectResponse(f"/posts/{post_id}", status_code=303)


@router.get("/posts/{post_id}/history")
def post_history(request: Request, post_id: int, db: DB, user: CurrentUser):
    _access, post = post_access(db, user, post_id)
    return page(request, "history.html", {"post": post, "versions": queries.post_history(db, post)})


@router.post("/posts/{post_id}/delete")
def delete_post(post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    service.delete_post(db, access, post)
    return RedirectResponse(f"/circles/{access.space.id}", status_code=303)


@router.post("/posts/{post_id}/pin")
def pin_post(post_id: int, db: DB, user: CurrentUser, pinned: Annotated[bool, Form()] = False,
             next: Annotated[str, Form()] = ""):
    access, post = post_access(db, user, post_id)
    service.set_pinned(db, access, post, pinned)
    return _back(next, f"/circles/{access.space.id}")


@router.post("/posts/{post_id}/react")
def react_post(post_id: int, db: DB, user: CurrentUser, kind: Annotated[str, Form(max_length=32)],
               on: Annotated[bool, Form()] = True, next: Annotated[str, Form()] = ""):
    access, post = post_access(db, user, post_id)
    service.set_reaction(db, access, kind=kind, on=on, post=post)
    return _back(next, f"/posts/{post_id}")


# --- comments -------------------------------------------------------------------------------

@router.post("/comments/{comment_id}/react")
def react_comment(comment_id: int, db: DB, user: CurrentUser, kind: Annotated[str, Form(max_length=32)],
                  on: Annotated[bool, Form()] = True, next: Annotated[str, Form()] = ""):
    access, post, comment = comment_access(db, user, comment_id)
    service.set_reaction(db, access, kind=kind, on=on, comment=comment)
    return _back(next, f"/posts/{post.id}#comment-{comment.id}")


@router.get("/comments/{comment_id}/edit")
def edit_comment_form(request: Request, comment_id: int, db: DB, user: CurrentUser):
    access, post, comment = comment_access(db, user, comment_id)
    if not access.can_edit(comment.author_id):
        raise Forbidden("Only the author can edit a comment.")
    return page(request, "edit.html", {"what": "comment", "action": f"/comments/{comment_id}/edit",
                                       "body": comment.body, "cancel": f"/posts/{post.id}"})


@router.post("/comments/{comment_id}/edit")
def edit_comment(request: Request, comment_id: int, db: DB, user: CurrentUser, body: Text = ""):
    access, post, comment = comment_access(db, user, comment_id)
    try:
        service.edit_comment(db, access, comment, body)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        return page(request, "edit.html", {"what": "comment", "action": f"/comments/{comment_id}/edit",
                                           "body": body, "cancel": f"/posts/{post.id}", "error": exc.message},
                    status_code=exc.status_code)
    return RedirectResponse(f"/posts/{post.id}#comment-{comment_id}", status_code=303)


@router.post("/comments/{comment_id}/delete")
def delete_comment(comment_id: int, db: DB, user: CurrentUser):
    access, post, comment = comment_access(db, user, comment_id)
    service.delete_comment(db, access, comment)
    return RedirectResponse(f"/posts/{post.id}", status_code=303)


# --- polls -----------------------------------------------------------------------------------

@router.post("/polls/{poll_id}/vote")
def vote(poll_id: int, db: DB, user: CurrentUser, option_ids: Annotated[list[int], Form()] = [],  # noqa: B006
         next: Annotated[str, Form()] = ""):
    access, poll = queries.poll_for_access(db, user, poll_id)
    service.vote(db, access, poll, option_ids)
    return _back(next, f"/posts/{poll.post_id}")


# --- direct messages ---------------------------------------------------------------------------

@router.get("/messages")
def conversations(request: Request, db: DB, user: CurrentUser):
    return page(request, "messages.html", {"conversations": queries.conversations(db, user),
                                           "partners": queries.message_partners(db, user)})


@router.post("/messages")
def open_conversation(db: DB, user: CurrentUser, user_id: Annotated[int, Form()]):
    other = visible_user(db, user, user_id)
    conversation = service.open_conversation(db, user, other)
    return RedirectResponse(f"/messages/{conversation.id}", status_code=303)


def _conversation_page(request, db, user, conversation, *, before=None, error=None, draft="", status=200):
    views, cursor = queries.messages(db, user, conversation, before=before)
    other_id = conversation.user_high_id if conversation.user_low_id == user.id else conversation.user_low_id
    return page(request, "conversation.html", {
        "conversation": conversation, "other": db.get(User, other_id), "messages": views, "cursor": cursor,
        "error": error, "draft": draft,
    }, status_code=status)


@router.get("/messages/{conversation_id}")
def conversation(request: Request, conversation_id: int, db: DB, user: CurrentUser, before: int | None = None):
    conv = conversation_access(db, user, conversation_id)
    with transaction() as write:  # read first, so the page's unread badge is already right
        service.mark_conversation_read(write, user, conversation_access(write, user, conversation_id))
    return _conversation_page(request, db, user, conv, before=before)


@router.get("/messages/{conversation_id}/fragment")
def conversation_fragment(request: Request, conversation_id: int, db: DB, user: CurrentUser):
    conv = conversation_access(db, user, conversation_id)
    views, _cursor = queries.messages(db, user, conv)
    with transaction() as write:
        service.mark_conversation_read(write, user, conversation_access(write, user, conversation_id))
    return page(request, "fragments/messages.html", {"conversation": conv, "messages": views, "nav": {}})


@router.post("/messages/{conversation_id}")
def send_message(request: Request, conversation_id: int, db: DB, user: CurrentUser, body: Text = ""):
    conv = conversation_access(db, user, conversation_id)
    try:
        message = service.send_message(db, user, conv, body)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        conv = conversation_access(db, user, conversation_id)
        return _conversation_page(request, db, user, conv, error=exc.message, draft=body, status=exc.status_code)
    return _after_write(request, message.screening, "message", f"/messages/{conversation_id}#message-{message.id}")
