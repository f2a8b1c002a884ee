"""Every write of the notification centre."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from peerlift.db import MEMO, memo, utcnow
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
from peerlift.delivery.scheduler import schedule
from peerlift.errors import InvalidInput
from peerlift.events import Audience, publish
from peerlift.identity.models import User
from peerlift.notify.models import DEFAULT_CHANNELS, Channel, Digest, Kind, Notification, Preference, Settings

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
EMAIL_BATCH_WINDOW = dt.timedelta(minutes=2)
# Safety messages cannot be switched off: a removed post or a crisis alert is always told.
ALWAYS_IN_APP = frozenset({Kind.moderation, Kind.escalation})


def channel_for(session: Session, user_id: int, kind: Kind) -> Channel:
    """The person's choice for this kind (remembered for the rest of the unit of work)."""
    if kind in ALWAYS_IN_APP:
        return Channel.in_app
    remembered = memo(session)
    key = ("notify_channel", user_id, kind)
    if key not in remembered:
        chosen = session.scalar(select(Preference.channel).where(Preference.user_id == user_id,
                                                                 Preference.kind == kind))
        remembered[key] = chosen or DEFAULT_CHANNELS[kind]
    return remembered[key]


def settings_for(session: Session, user_id: int) -> Settings:
    row = session.get(Settings, user_id)
    return row if row is not None else Settings(user_id=user_id, quiet_start="22:00", quiet_end="07:00",
                                                digest=Digest.off, digest_hour=8)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def in_quiet_hours(settings: Settings, tz: str, at: dt.datetime) -> bool:
    start, end = _minutes(settings.quiet_start), _minutes(settings.quiet_end)
    if start == end:
        return False
    local = at.astimezone(ZoneInfo(tz))
    now = local.hour * 60 + local.minute
    return start <= now < end if start < end else (now >= start or now < end)


def next_allowed(settings: Settings, tz: str, at: dt.datetime) -> dt.datetime:
    """``at`` itself, or the end of the quiet hours it falls in (in the person's zone)."""
    if not in_quiet_hours(settings, tz, at):
        return at
    zone = ZoneInfo(tz)
    local = at.astimezone(zone)
    end = _minutes(settings.quiet_end)
    candidate = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if candidate <= local:
        candidate += dt.timedelta(days=1)
    # Rebuild from the wall clock so a daylight-saving change on the way is respected.
    candidate = dt.datetime.combine(candidate.date(), candidate.time(), tzinfo=zone)
    return candidate.astimezone(dt.UTC)


def unread_count(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0


def notify(session: Session, *, user_id: int, kind: Kind, actor_id: int | None = None, space_id: int | None = None,
           post_id: int | None = None, comment_id: int | None = None, conversation_id: int | None = None,
           text: str = "", delivery_id: int | None = None, link: str | None = None) -> Notification | None:
    """Tell a person something happened, as their preferences say (never themselves of their own acts)."""
    if actor_id is not None and actor_id == user_id:
        return None
    channel = channel_for(session, user_id, kind)
    if channel == Channel.off:
        return None
    note = Notification(user_id=user_id, kind=kind, actor_id=actor_id, space_id=space_id, post_id=post_id,
                        comment_id=comment_id, conversation_id=conversation_id, text=text[:2000],
                        delivery_id=delivery_id, email=channel == Channel.email, link=link)
    session.add(note)
    session.flush()
    # No unread count here: counting a person's unread notifications on every new one costs more
    # the more they have; clients add one, and `notifications.read` carries the exact count.
    publish(session, "notification.created", Audience(user_id=user_id), actor_id=actor_id,
            object_type="notification", object_id=note.id,
            data={"notification_id": note.id, "kind": kind.value, "post_id": post_id,
                  "conversation_id": conversation_id})
    if channel == Channel.email:
        _schedule_activity_email(session, user_id, note.id)
    return note


def _schedule_activity_email(session: Session, user_id: int, notification_id: int) -> None:
    pending = session.scalar(select(ScheduledDelivery.id).where(
        ScheduledDelivery.kind == "email.activity", ScheduledDelivery.status == DeliveryStatus.pending,
        ScheduledDelivery.dedupe_key.like(f"activity:{user_id}:%")).limit(1))
    if pending is not None:
        return
    user = session.get(User, user_id)
    due = next_allowed(settings_for(session, user_id), user.timezone, utcnow() + EMAIL_BATCH_WINDOW)
    schedule(session, "email.activity", {"user_id": user_id}, due_at=due,
             dedupe_key=f"activity:{user_id}:{notification_id}")


def mark_read(session: Session, user: User, ids: list[int] | None = None) -> int:
    """Mark some (or all) of a person's notifications read; returns how many changed."""
    query = update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if ids is not None:
        if not ids:
            return 0
        query = query.where(Notification.id.in_(ids))
    changed = session.execute(query.values(read_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    if changed:
        publish(session, "notifications.read", Audience(user_id=user.id), actor_id=user.id,
                object_type="notification", data={"unread_count": unread_count(session, user.id)})
    return changed


def _check_hhmm(value: str, field: str) -> str:
    if not HHMM.match(value or ""):
        raise InvalidInput("Use a 24-hour time such as 22:00.", field=field)
    return value


def update_settings(session: Session, user: User, *, channels: dict[str, str] | None = None,
                    quiet_start: str | None = None, quiet_end: str | None = None,
                    digest: str | None = None, digest_hour: int | None = None) -> Settings:
    session.info.pop(MEMO, None)
    for kind_name, channel_name in (channels or {}).items():
        try:
            kind = Kind(kind_name)
        except ValueError:
            raise InvalidInput(f"Unknown notification kind {kind_name!r}.", field=f"channels.{kind_name}")
        if kind in ALWAYS_IN_APP:
            raise InvalidInput(f"{kind_name} notifications are always shown; they cannot be changed.",
                               field=f"channels.{kind_name}")
        try:
            channel = Channel(channel_name)
        except ValueError:
            raise InvalidInput(f"Use in_app, email or off for {kind_name}.", field=f"channels.{kind_name}")
        row = session.scalar(select(Preference).where(Preference.user_id == user.id, Preference.kind == kind))
        if row is None:
            session.add(Preference(user_id=user.id, kind=kind, channel=channel))
        else:
            row.channel = channel
    current = session.get(Settings, user.id)
    if current is None:
        current = Settings(user_id=user.id, quiet_start="22:00", quiet_end="07:00", digest=Digest.off, digest_hour=8)
        session.add(current)
    if quiet_start is not None:
        current.quiet_start = _check_hhmm(quiet_start, "quiet_start")
    if quiet_end is not None:
        current.quiet_end = _check_hhmm(quiet_end, "quiet_end")
    if digest_hour is not None:
        if not 0 <= digest_hour <= 23:
            raise InvalidInput("The digest hour is between 0 and 23.", field="digest_hour")
        current.digest_hour = digest_hour
    if digest is not None:
        try:
            current.digest = Digest(digest)
        except ValueError:
            raise InvalidInput("The digest is off, daily or weekly.", field="digest")
    session.flush()
    if current.digest != Digest.off:
        schedule_next_digest(session, user, current)
    publish(session, "notification_settings.updated", Audience(user_id=user.id), actor_id=user.id,
            object_type="user", object_id=user.id)
    return current


def next_digest_time(settings: Settings, tz: str, after: dt.datetime) -> dt.datetime:
    """The next digest hour in the person's zone (Mondays for a weekly digest)."""
    zone = ZoneInfo(tz)
    local = after.astimezone(zone)
    day = local.date()
    for _ in range(15):
        candidate = dt.datetime.combine(day, dt.time(settings.digest_hour), tzinfo=zone)
        if candidate > local and (settings.digest == Digest.daily or candidate.weekday() == 0):
            return candidate.astimezone(dt.UTC)
        day += dt.timedelta(days=1)
    raise AssertionError("no digest time within two weeks")


def schedule_next_digest(session: Session, user: User, settings: Settings, after: dt.datetime | None = None) -> None:
    due = next_digest_time(settings, user.timezone, after or utcnow())
    local_day = due.astimezone(ZoneInfo(user.timezone)).date().isoformat()
    schedule(session, "email.digest", {"user_id": user.id}, due_at=due, dedupe_key=f"digest:{user.id}:{local_day}")
