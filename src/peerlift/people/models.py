from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime, utcnow


class Visibility(str, enum.Enum):
    """Who sees a field of a health profile; each level admits everyone the one before it admits."""

    only_me = "only_me"
    my_circles = "my_circles"            # people who share a circle with me
    my_communities = "my_communities"    # ... or an open community
    installation = "installation"        # anyone signed in


# The widest relation a level admits: 1 circle, 2 community, 3 anyone signed in (0: nobody else).
REACH = {Visibility.only_me: 0, Visibility.my_circles: 1, Visibility.my_communities: 2, Visibility.installation: 3}

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75+")
FIELDS = ("conditions", "treatments", "goals", "diagnosis_years", "age_band")


class HealthProfile(Base):
    """A person's health profile. Conditions: ``[{"code": "E11.9" | None, "text": str, "year": int | None}]``;
    treatments: ``[{"code": "A10BA02" | None, "text": str}]``; goals: ``[str]``."""

    __tablename__ = "health_profile"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    conditions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    treatments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    goals: Mapped[list[Any]] = mapped_column(JSON, default=list)
    age_band: Mapped[str | None] = mapped_column(String(8), nullable=True)
    conditions_visibility: Mapped[str] = mapped_column(String(16), default=Visibility.only_me.value)
    treatments_visibility: Mapped[str] = mapped_column(String(16), default=Visibility.only_me.value)
    goals_visibility: Mapped[str] = mapped_column(String(16), default=Visibility.only_me.value)
    diagnosis_years_visibility: Mapped[str] = mapped_column(String(16), default=Visibility.only_me.value)
    age_band_visibility: Mapped[str] = mapped_column(String(16), default=Visibility.only_me.value)
    suggest_me: Mapped[bool] = mapped_column(default=False)   # opted in to "people like me"
    hidden: Mapped[bool] = mapped_column(default=False)       # hidden from suggestions (wins over suggest_me)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    def visibility(self, field: str) -> Visibility:
        return Visibility(getattr(self, f"{field}_visibility"))

    @property
    def suggestable(self) -> bool:
        return self.suggest_me and not self.hidden


class ProfileCode(Base):
    """The index of "people like me": one row per shared matching key of a suggestable person
    (``C:E11`` a condition's category, ``CT:`` a free-text condition, ``M:`` a medicine's ATC code,
    ``MT:`` a free-text medicine, ``G:`` a goal), with the field's visibility. Fields kept to
    oneself and people who are not suggestable have no rows, so candidates come from one indexed
    look-up on shared keys."""

    __tablename__ = "profile_code"
    # Covers the ranking query (shared keys, shared with anyone, summed per person) on its own.
    __table_args__ = (Index("ix_profile_code_key_visibility_user_id", "key", "visibility", "user_id", "field"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(120))
    field: Mapped[str] = mapped_column(String(12))
    visibility: Mapped[str] = mapped_column(String(16))


class RequestStatus(str, enum.Enum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"


class ConnectionRequest(Base):
    __tablename__ = "connection_request"
    __table_args__ = (
        Index("ix_connection_request_recipient_id_status", "recipient_id", "status"),
        Index("ix_connection_request_sender_id_recipient_id", "sender_id", "recipient_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sender_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default=RequestStatus.pending.value)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
