from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime, utcnow


class FlagReason(str, enum.Enum):
    crisis = "crisis"
    harmful_advice = "harmful_advice"
    harassment = "harassment"
    spam = "spam"
    privacy = "privacy"


FLAG_REASON_TEXT = {
    FlagReason.crisis: "Someone may be in crisis",
    FlagReason.harmful_advice: "Harmful health advice",
    FlagReason.harassment: "Harassment or bullying",
    FlagReason.spam: "Spam or advertising",
    FlagReason.privacy: "Shares private information",
}


class Visibility(str, enum.Enum):
    """Where a post or comment stands with moderation (the author always sees their own)."""

    visible = "visible"
    held = "held"        # waiting for review: pre-moderation, gating, crisis, or hidden by a moderator
    removed = "removed"  # removed by a moderator, with a reason shown to the author


class ReviewSource(str, enum.Enum):
    flag = "flag"
    premoderation = "premoderation"
    gated = "gated"
    triage = "triage"


class ReviewStatus(str, enum.Enum):
    open = "open"
    handled = "handled"


class ModAction(str, enum.Enum):
    hide = "hide"
    remove = "remove"
    restore = "restore"
    approve = "approve"
    warn = "warn"
    mute = "mute"
    remove_member = "remove_member"
    dismiss = "dismiss"
    gate = "gate"
    ungate = "ungate"


class EscalationStatus(str, enum.Enum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


class TriageRecord(Base):
    """The triage of one piece of writing, with the reasons, as the reviewer sees them."""

    __tablename__ = "triage_record"
    __table_args__ = (
        UniqueConstraint("object_type", "object_id"),
        Index("ix_triage_record_author_id_id", "author_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    object_type: Mapped[str] = mapped_column(String(16))  # post, comment, message, response
    object_id: Mapped[int] = mapped_column(Integer)
    space_id: Mapped[int | None] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"), nullable=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    emergency: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewItem(Base):
    """One piece of writing in a circle's review queue (one row per object; a new flag reopens it)."""

    __tablename__ = "review_item"
    __table_args__ = (
        UniqueConstraint("object_type", "object_id"),
        Index("ix_review_item_space_id_status", "space_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"))
    object_type: Mapped[str] = mapped_column(String(16))  # post, comment, message
    object_id: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    source: Mapped[ReviewSource] = mapped_column(Enum(ReviewSource, native_enum=False, length=16))
    level: Mapped[str] = mapped_column(String(8), default="green")
    status: Mapped[ReviewStatus] = mapped_column(Enum(ReviewStatus, native_enum=False, length=8),
                                                 default=ReviewStatus.open)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    handled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    action: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")


class Flag(Base):
    __tablename__ = "flag"
    __table_args__ = (UniqueConstraint("object_type", "object_id", "flagger_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_item_id: Mapped[int] = mapped_column(ForeignKey("review_item.id", ondelete="CASCADE"), index=True)
    object_type: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int] = mapped_column(Integer)
    flagger_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    reason: Mapped[FlagReason] = mapped_column(Enum(FlagReason, native_enum=False, length=16))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModerationAction(Base):
    """Every moderation step, with who took it and when."""

    __tablename__ = "moderation_action"

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"), index=True)
    review_item_id: Mapped[int | None] = mapped_column(ForeignKey("review_item.id", ondelete="SET NULL"), nullable=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    action: Mapped[ModAction] = mapped_column(Enum(ModAction, native_enum=False, length=16))
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                       nullable=True)
    object_type: Mapped[str] = mapped_column(String(16), default="")
    object_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Escalation(Base):
    """A person possibly at risk, alerted to the on-call clinicians until one acknowledges."""

    __tablename__ = "escalation"
    __table_args__ = (Index("ix_escalation_status_raised_at", "status", "raised_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    space_id: Mapped[int | None] = mapped_column(ForeignKey("space.id", ondelete="SET NULL"), nullable=True)
    object_type: Mapped[str] = mapped_column(String(16))  # post, comment, message, response
    object_id: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(8))
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[EscalationStatus] = mapped_column(Enum(EscalationStatus, native_enum=False, length=16),
                                                     default=EscalationStatus.open)
    tier: Mapped[int] = mapped_column(Integer, default=0)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                           nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                       nullable=True)
    outcome: Mapped[str] = mapped_column(String(32), default="")
    note: Mapped[str] = mapped_column(Text, default="")


class EscalationStep(Base):
    __tablename__ = "escalation_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalation.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # raised, notified, escalated, acknowledged, resolved
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="")
