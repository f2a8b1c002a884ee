from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import JSON, Enum, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime, utcnow


class DeliveryStatus(str, enum.Enum):
    pending = "pending"
    done = "done"
    skipped = "skipped"   # its condition no longer held at send time
    failed = "failed"     # gave up after the last retry


class ScheduledDelivery(Base):
    """A piece of due work. Claimed atomically; delivered and marked done in one transaction."""

    __tablename__ = "scheduled_delivery"
    __table_args__ = (Index("ix_scheduled_delivery_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(48))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[DeliveryStatus] = mapped_column(Enum(DeliveryStatus, native_enum=False, length=16),
                                                   default=DeliveryStatus.pending)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str] = mapped_column(String(64), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
