"""Scheduled work of the notification centre."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from peerlift.community.models import Membership, Post
from peerlift.db import utcnow
from peerlift.delivery.mail import build, link, send
from peerlift.delivery.models import ScheduledDelivery
from peerlift.delivery.scheduler import PERSON_GONE, Defer, Skip, active_user, handler
from peerlift.notify import service
from peerlift.notify.models import Digest, Kind, Notification

PHRASES = {
    Kind.mention: ("mention", "mentions"),
    Kind.reply: ("reply", "replies"),
    Kind.reaction: ("reaction", "reactions"),
    Kind.message: ("private message", "private messages"),
    Kind.facilitator_answer: ("answer from your coach", "answers from your coach"),
    Kind.prompt: ("message from your programme", "messages from your programme"),
    Kind.professional_decision: ("decision on your application as a professional",
                                 "decisions on your applications as a professional"),
    Kind.answer_accepted: ("accepted answer", "accepted answers"),
}


def summary(counts: Counter) -> str:
    parts = [f"{n} new {PHRASES[kind][0 if n == 1 else 1]}" for kind, n in counts.most_common()]
    return ", ".join(parts)


@handler("notify.prompt")
def deliver_prompt(session: Session, row: ScheduledDelivery):
    """An in-app notification written by the programme, delivered exactly once."""
    user = active_user(session, row.payload["user_id"])
    if user is None:
        return PERSON_GONE
    service.notify(session, user_id=user.id, kind=Kind.prompt, text=row.payload.get("text", ""),
                   space_id=row.payload.get("circle_id"), delivery_id=row.id)


@handler("email.activity", external=True)
def send_activity_email(session: Session, row: ScheduledDelivery):
    """'You have 3 new replies in your circle' and a link: counts, never content."""
    user = active_user(session, row.payload["user_id"])
    if user is None:
        return PERSON_GONE
    settings = service.settings_for(session, user.id)
    allowed = service.next_allowed(settings, user.timezone, utcnow())
    if allowed > utcnow():
        return Defer(allowed)
    waiting = list(session.execute(select(Notification.id, Notification.kind).where(
        Notification.user_id == user.id, Notification.email.is_(True), Notification.read_at.is_(None),
        Notification.emailed_at.is_(None))))
    if not waiting:
        return Skip("everything was read in the app already")
    counts = Counter(kind for _id, kind in waiting)
    body = (f"Hello {user.first_name},\n\nYou have {summary(counts)} in peerlift.\n\n"
            f"Read them here: {link('/notifications')}\n\n"
            f"You can choose what we email you about: {link('/settings/notifications')}\n")
    total = sum(counts.values())
    subject = f"You have {total} new {'notification' if total == 1 else 'notifications'} in peerlift"
    send(build(user.email, subject, body, message_key=row.dedupe_key))
    session.execute(update(Notification).where(Notification.id.in_([i for i, _k in waiting]))
                    .values(emailed_at=utcnow()))


@handler("email.digest", external=True)
def send_digest(session: Session, row: ScheduledDelivery):
    user = active_user(session, row.payload["user_id"])
    if user is None:
        return PERSON_GONE
    settings = service.settings_for(session, user.id)
    if settings.digest == Digest.off:
        return Skip("the digest was turned off")
    since = settings.last_digest_at or row.created_at
    circles = select(Membership.space_id).where(Membership.user_id == user.id)
    new_posts = session.scalar(select(func.count(Post.id)).where(
        Post.space_id.in_(circles), Post.created_at > since, Post.author_id != user.id,
        Post.deleted_at.is_(None))) or 0
    unread = Counter(kind for (kind,) in session.execute(select(Notification.kind).where(
        Notification.user_id == user.id, Notification.read_at.is_(None), Notification.created_at > since)))
    service.schedule_next_digest(session, user, settings, after=row.due_at)
    settings.last_digest_at = utcnow()
    if not new_posts and not unread:
        return Skip("nothing new since the last digest")
    lines = []
    if new_posts:
        lines.append(f"{new_posts} new {'post' if new_posts == 1 else 'posts'} in your circles")
    if unread:
        lines.append(summary(unread))
    period = "today" if settings.digest == Digest.daily else "this week"
    body = (f"Hello {user.first_name},\n\nHere is what happened {period} in peerlift:\n\n"
            + "".join(f"  - {line}\n" for line in lines)
            + f"\nOpen peerlift: {link('/circles')}\n\nChange or stop this digest: {link('/settings/notifications')}\n")
    send(build(user.email, f"Your peerlift digest: {', '.join(lines)}", body, message_key=row.dedupe_key))
