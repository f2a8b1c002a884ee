"""Scheduled work of the protocols domain: move the planning horizon, deliver an item."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from peerlift.community import service as community
from peerlift.community.models import CircleRole, Comment, Membership, Post, Reaction, Space
from peerlift.db import utcnow
from peerlift.delivery.models import ScheduledDelivery
from peerlift.delivery.scheduler import PERSON_GONE, Skip, active_user, handler, schedule
from peerlift.events import Event
from peerlift.identity.models import User
from peerlift.notify import service as notify
from peerlift.notify.models import Kind
from peerlift.policy import circle_access
from peerlift.protocols import service
from peerlift.protocols.format import Condition, Item, Protocol, render
from peerlift.protocols.models import Assignment, AssignmentStatus, PlannedDelivery, PlannedStatus, ProtocolVersion

LATE_AFTER = dt.timedelta(minutes=5)
ACTIVITY_KINDS = ("post.created", "comment.created", "reaction.added", "poll.voted")


@handler("protocol.plan")
def plan_ahead(session: Session, row: ScheduledDelivery):
    assignment = session.get(Assignment, row.payload["assignment_id"])
    if assignment is None or assignment.status != AssignmentStatus.active:
        return Skip("the assignment is no longer active")
    service.plan(session, assignment)


def _facilitator(session: Session, space_id: int) -> User | None:
    return session.scalar(select(User).join(Membership, Membership.user_id == User.id)
                          .where(Membership.space_id == space_id, Membership.role == CircleRole.facilitator)
                          .order_by(Membership.id).limit(1))


def _counts(session: Session, space_id: int, user_id: int | None, since: dt.datetime) -> dict[str, int]:
    mine = circle = received = 0
    posts = session.scalar(select(func.count(Post.id)).where(Post.space_id == space_id, Post.created_at > since,
                                                              Post.deleted_at.is_(None))) or 0
    comments = session.scalar(select(func.count(Comment.id)).join(Post, Post.id == Comment.post_id)
                              .where(Post.space_id == space_id, Comment.created_at > since,
                                     Comment.deleted_at.is_(None))) or 0
    circle = posts + comments
    if user_id is not None:
        mine = (session.scalar(select(func.count(Post.id)).where(
                    Post.space_id == space_id, Post.author_id == user_id, Post.created_at > since,
                    Post.deleted_at.is_(None))) or 0) + \
               (session.scalar(select(func.count(Comment.id)).join(Post, Post.id == Comment.post_id).where(
                    Post.space_id == space_id, Comment.author_id == user_id, Comment.created_at > since,
                    Comment.deleted_at.is_(None))) or 0)
        received = session.scalar(select(func.count(Reaction.id)).join(Post, Post.id == Reaction.post_id).where(
            Post.space_id == space_id, Post.author_id == user_id, Reaction.created_at > since)) or 0
    return {"my_posts_week": mine, "circle_posts_week": circle, "reactions_received_week": received}


def condition_holds(session: Session, condition: Condition | None, space_id: int, user_id: int | None,
                    now: dt.datetime) -> tuple[bool, str]:
    """Whether the item's condition holds now, and in words why not."""
    if condition is None:
        return True, ""
    if condition.inactive_days is not None and user_id is not None:
        since = now - dt.timedelta(days=condition.inactive_days)
        active = session.scalar(select(Event.id).where(Event.actor_id == user_id, Event.space_id == space_id,
                                                       Event.kind.in_(ACTIVITY_KINDS), Event.at > since).limit(1))
        if active is not None:
            return False, f"the person was active within {condition.inactive_days} days"
    if condition.no_posts_days is not None and user_id is not None:
        since = now - dt.timedelta(days=condition.no_posts_days)
        posted = session.scalar(select(Post.id).where(Post.space_id == space_id, Post.author_id == user_id,
                                                      Post.created_at > since, Post.deleted_at.is_(None)).limit(1))
        if posted is not None:
            return False, f"the person posted within {condition.no_posts_days} days"
    if condition.circle_quiet_hours is not None:
        since = now - dt.timedelta(hours=condition.circle_quiet_hours)
        posted = session.scalar(select(Post.id).where(Post.space_id == space_id, Post.created_at > since,
                                                      Post.deleted_at.is_(None)).limit(1))
        if posted is not None:
            return False, f"the circle had a post within {condition.circle_quiet_hours} hours"
    return True, ""


def values_for(session: Session, protocol: Protocol, planned: PlannedDelivery, space: Space,
               person: User | None, facilitator: User | None, now: dt.datetime) -> dict[str, object]:
    values: dict[str, object] = {
        "circle_name": space.name,
        "facilitator_name": facilitator.display_name if facilitator else "your coach",
        "day": planned.day, "days_since_start": planned.day - 1,
        "days_left": protocol.duration_days - planned.day, "week": (planned.day - 1) // 7 + 1,
        "days_to_quit": (protocol.quit_day - planned.day) if protocol.quit_day else "",
        "first_name": person.first_name if person else "", "display_name": person.display_name if person else "",
    }
    values.update(_counts(session, space.id, person.id if person else None, now - dt.timedelta(days=7)))
    return values


def _item(protocol: Protocol, item_id: str) -> Item:
    return next(i for i in protocol.items if i.id == item_id)


@handler("protocol.deliver")
def deliver(session: Session, row: ScheduledDelivery):
    """Send one planned item, exactly once, recording what happened for the fidelity report."""
    planned = session.get(PlannedDelivery, row.payload["planned_id"])
    if planned is None or planned.status != PlannedStatus.planned:
        return Skip("nothing planned any more")
    now = utcnow()
    assignment = session.get(Assignment, planned.assignment_id)
    if assignment.status != AssignmentStatus.active:
        planned.status, planned.reason = PlannedStatus.cancelled, "the assignment is no longer active"
        return Skip(planned.reason)
    protocol = service.protocol_of(session.get(ProtocolVersion, assignment.protocol_version_id))
    item = _item(protocol, planned.item_id)
    space = session.get(Space, planned.space_id)
    person = session.get(User, planned.user_id) if planned.user_id else None
    if person is not None:
        member = session.scalar(select(Membership.id).where(Membership.space_id == space.id,
                                                            Membership.user_id == person.id))
        if member is None or not person.is_active:
            planned.status, planned.reason = PlannedStatus.cancelled, "the person is no longer in the circle"
            return Skip(planned.reason)
    holds, why = condition_holds(session, item.condition, space.id, person.id if person else None, now)
    if not holds:
        planned.status, planned.reason = PlannedStatus.skipped, why
        return Skip(why)
    facilitator = _facilitator(session, space.id)
    if item.channel in ("circle_post", "facilitator_dm") and facilitator is None:
        planned.status, planned.reason = PlannedStatus.failed, "the circle has no facilitator to send it"
        return Skip(planned.reason)
    text = render(item.text, values_for(session, protocol, planned, space, person, facilitator, now))
    link = None
    if item.kind == "questionnaire":
        name, link = _questionnaire_requests(session, item, space, person, facilitator)
        if item.channel in ("circle_post", "facilitator_dm"):
            text = f"{text}\n\n[Answer the {name} questionnaire]({link})"
        else:
            text = f"{text} ({name} questionnaire: open to answer)"
    if item.channel == "circle_post":
        access = circle_access(session, facilitator, space.id)
        poll = item.poll
        community.create_post(session, access, text, poll_question=poll.question if poll else None,
                              poll_options=poll.options if poll else None,
                              poll_multiple=poll.multiple if poll else False)
    elif item.channel == "facilitator_dm":
        conversation = community.open_conversation(session, facilitator, person)
        community.send_message(session, facilitator, conversation, text)
    else:
        notify.notify(session, user_id=person.id, kind=Kind.prompt, text=text, space_id=space.id,
                      delivery_id=row.id, link=link)
        if item.channel == "email":
            schedule(session, "email.prompt", {"user_id": person.id}, due_at=now,
                     dedupe_key=f"email.prompt:{planned.id}")
    planned.status, planned.sent_at = PlannedStatus.sent, now
    lateness = now - planned.planned_at
    planned.late_seconds = max(int(lateness.total_seconds()), 0)
    if lateness > LATE_AFTER:
        attempts = f"after {row.attempts} attempts ({row.last_error[:200]})" if row.attempts > 1 else \
            "the scheduler was behind or not running"
        planned.reason = f"sent {planned.late_seconds // 60} min late: {attempts}"


def _questionnaire_requests(session: Session, item: Item, space: Space, person: User | None,
                            facilitator: User | None) -> tuple[str, str]:
    """A questionnaire item asks its person (or, for a circle post, every member) to answer the
    questionnaire once: a request each. Returns the questionnaire's name and the link to its form."""
    from peerlift.tracking import service as tracking

    if person is not None:
        request = tracking.request_questionnaire(session, person, item.questionnaire, requested_by=None,
                                                 space_id=space.id, source="protocol", notify_person=False)
        link = tracking.request_link(request)
    else:
        members = session.scalars(select(User).join(Membership, Membership.user_id == User.id).where(
            Membership.space_id == space.id, User.is_active.is_(True),
            Membership.role.in_((CircleRole.member, CircleRole.peer_supporter))).order_by(User.id)).all()
        for member in members:
            tracking.request_questionnaire(session, member, item.questionnaire, requested_by=facilitator,
                                           space_id=space.id, source="protocol", notify_person=False)
        link = "/me/questionnaires"
    return tracking.instrument(session, item.questionnaire).short_name, link


@handler("email.prompt", external=True)
def email_prompt(session: Session, row: ScheduledDelivery):
    """A programme message by email: says that something is waiting, never the text itself."""
    from peerlift.delivery.mail import build, link, send

    person = active_user(session, row.payload["user_id"])
    if person is None:
        return PERSON_GONE
    body = (f"Hello {person.first_name},\n\nYou have a new message from your programme in peerlift.\n\n"
            f"Read it here: {link('/notifications')}\n")
    send(build(person.email, "A new message from your programme", body, message_key=row.dedupe_key))
