from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime, utcnow


class Kind(str, enum.Enum):
    mention = "mention"
    reply = "reply"
    reaction = "reaction"
    message = "message"
    facilitator_answer = "facilitator_answer"
    prompt = "prompt"
    moderation = "moderation"
    escalation = "escalation"
    connection_request = "connection_request"
    connection_accepted = "connection_accepted"
    professional_decision = "professional_decision"
    answer_accepted = "answer_accepted"


class Channel(str, enum.Enum):
    in_app = "in_app"   # the notification centre only
    email = "email"     # the centre, and an email without health content
    off = "off"


class Digest(str, enum.Enum):
    off = "off"
    daily = "daily"
    weekly = "weekly"


DEFAULT_CHANNELS: dict[Kind, Channel] = {
    Kind.mention: Channel.in_app,
    Kind.reply: Channel.in_app,
    Kind.reaction: Channel.in_app,
    Kind.message: Channel.email,
    Kind.facilitator_answer: Channel.email,
    Kind.prompt: Channel.in_app,
    Kind.moderation: Channel.in_app,
    Kind.escalation: Channel.in_app,  # the escalation sends its own email, at once
    Kind.connection_request: Channel.in_app,
    Kind.connection_accepted: Channel.in_app,
    Kind.professional_decision: Channel.email,
    Kind.answer_accepted: Channel.in_app,
}


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[Kind] = mapped_column(Enum(Kind, native_enum=False, length=24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    space_id: Mapped[int | None] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"), nullable=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), nullable=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comment.id", ondelete="CASCADE"), nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"), nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")  # only for prompts written by the programme
    link: Mapped[str | None] = mapped_column(String(200), nullable=True)  # where a prompt leads (a path)
    # A scheduled notification records the delivery that made it: at most one per delivery.
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("scheduled_delivery.id", ondelete="SET NULL"),
                                                    nullable=True, unique=True)
    email: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    emailed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Preference(Base):
    __tablename__ = "notification_preference"
    __table_args__ = (UniqueConstraint("user_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[Kind] = mapped_column(Enum(Kind, native_enum=False, length=24))
    channel: Mapped[Channel] = mapped_column(Enum(Channel, native_enum=False, length=16))


class Settings(Base):
    """Quiet hours (local time; no email then) and the email digest of one person."""

    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    quiet_start: Mapped[str] = mapped_column(String(5), default="22:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="07:00")
    digest: Mapped[Digest] = mapped_column(Enum(Digest, native_enum=False, length=8), default=Digest.off)
    digest_hour: Mapped[int] = mapped_column(Integer, default=8)
    last_digest_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
