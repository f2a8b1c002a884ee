from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Date, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime, utcnow


class ProtocolVersion(Base):
    """One checked protocol file, stored as written. A new version is a new row."""

    __tablename__ = "protocol_version"
    __table_args__ = (UniqueConstraint("protocol_key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_key: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    duration_days: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AssignmentStatus(str, enum.Enum):
    active = "active"
    migrated = "migrated"   # replaced by a newer version; see migrated_to_id
    ended = "ended"


class Assignment(Base):
    """A protocol version running in a circle from a start date (in the circle's calendar)."""

    __tablename__ = "protocol_assignment"
    __table_args__ = (Index("ix_protocol_assignment_space_id_status", "space_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    protocol_version_id: Mapped[int] = mapped_column(ForeignKey("protocol_version.id"))
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"))
    arm_id: Mapped[int | None] = mapped_column(ForeignKey("arm.id", ondelete="SET NULL"), nullable=True)
    start_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[AssignmentStatus] = mapped_column(Enum(AssignmentStatus, native_enum=False, length=16),
                                                     default=AssignmentStatus.active)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    migrated_from_id: Mapped[int | None] = mapped_column(ForeignKey("protocol_assignment.id"), nullable=True)
    migration_reason: Mapped[str] = mapped_column(String(500), default="")
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    planned_through: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class PlannedStatus(str, enum.Enum):
    planned = "planned"
    sent = "sent"
    skipped = "skipped"       # its condition did not hold at send time
    cancelled = "cancelled"   # the assignment was migrated or ended, or the person left or moved zone
    failed = "failed"


class PlannedDelivery(Base):
    """One planned delivery of a protocol item, and what became of it: the fidelity record."""

    __tablename__ = "planned_delivery"
    __table_args__ = (
        UniqueConstraint("assignment_id", "item_id", "day", "person_key"),
        Index("ix_planned_delivery_assignment_id_status", "assignment_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("protocol_assignment.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(24))
    day: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), nullable=True,
                                                index=True)
    person_key: Mapped[int] = mapped_column(Integer, default=0)  # user_id, or 0 for a circle post
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"))
    local_date: Mapped[dt.date] = mapped_column(Date)
    local_time: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(64))
    planned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[PlannedStatus] = mapped_column(Enum(PlannedStatus, native_enum=False, length=16),
                                                  default=PlannedStatus.planned)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    late_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    scheduled_delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("scheduled_delivery.id", ondelete="SET NULL"), nullable=True)
