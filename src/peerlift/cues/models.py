from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Enum, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime, utcnow


class CueDecision(Base):
    """One decision point: a rule's trigger fired and its condition held for a person. Whether it
    was sent, and why not, is recorded here (the daily limit and cool-downs read it too); for
    micro-randomised rules, the probability and the random draw."""

    __tablename__ = "cue_decision"
    __table_args__ = (
        Index("ix_cue_decision_user_id_decided_at", "user_id", "decided_at"),
        Index("ix_cue_decision_rule", "ruleset", "rule_id", "user_id", "decided_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ruleset: Mapped[str] = mapped_column(String(64))
    ruleset_version: Mapped[str] = mapped_column(String(32))
    rule_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    space_id: Mapped[int | None] = mapped_column(ForeignKey("space.id", ondelete="SET NULL"), nullable=True,
                                                 index=True)
    trigger: Mapped[str] = mapped_column(String(48))
    event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    available: Mapped[bool] = mapped_column(default=True)
    unavailable_reason: Mapped[str] = mapped_column(String(200), default="")
    probability: Mapped[float] = mapped_column(Float, default=1.0)
    draw: Mapped[float | None] = mapped_column(Float, nullable=True)
    sent: Mapped[bool] = mapped_column(default=False)
    action: Mapped[str] = mapped_column(String(16))
    to_person: Mapped[bool] = mapped_column(default=False)  # a dm or notification: counts towards the daily limit
    outcome: Mapped[str] = mapped_column(String(64), default="")  # what it made, e.g. message:12, card:3


class CardStatus(str, enum.Enum):
    open = "open"
    snoozed = "snoozed"
    dismissed = "dismissed"
    replied = "replied"


class InboxCard(Base):
    """Something about a member that needs a facilitator of their circle now."""

    __tablename__ = "inbox_card"
    __table_args__ = (Index("ix_inbox_card_space_id_status_id", "space_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    ruleset: Mapped[str] = mapped_column(String(64))
    rule_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(300), default="")
    event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[CardStatus] = mapped_column(Enum(CardStatus, native_enum=False, length=16), default=CardStatus.open)
    snoozed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                      nullable=True)
    handled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class InboxAction(Base):
    """Every action on a card: who, what, when."""

    __tablename__ = "inbox_action"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("inbox_card.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[str] = mapped_column(String(300), default="")
