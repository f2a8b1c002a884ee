"""Tables of research analytics: facilitator time adjusted by hand, and the per-study key
that pseudonymises people in exports (kept here, never exported)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime, utcnow


class CostAdjustment(Base):
    """Minutes of staff time added to (or, negative, taken from) what activity sessions measured:
    training, supervision, calls made outside peerlift. ``arm_id`` None spreads them over every arm
    the person worked in, in proportion to the measured time."""

    __tablename__ = "cost_adjustment"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    arm_id: Mapped[int | None] = mapped_column(ForeignKey("arm.id", ondelete="CASCADE"), nullable=True)
    minutes: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                      nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StudyKey(Base):
    """The secret of a study's pseudonyms (HMAC-SHA256 key, hex). Stable, so exports made on
    different days join; never shown or exported."""

    __tablename__ = "study_key"

    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), primary_key=True)
    pseudonym_key: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
