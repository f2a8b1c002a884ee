"""Tables of self-monitoring (entries, goals, measures) and questionnaires (requests, responses)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime, utcnow


class Measure(Base):
    """A measure a researcher defined (the built-in ones are data in ``measures.py``)."""

    __tablename__ = "tracking_measure"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    unit: Mapped[str] = mapped_column(String(20), default="")
    kind: Mapped[str] = mapped_column(String(8))  # int, decimal, yesno
    min_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                      nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TrackingProfile(Base):
    """A person's preferences and goals for self-monitoring."""

    __tablename__ = "tracking_profile"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    weight_unit: Mapped[str] = mapped_column(String(4), default="kg")
    target_weight_kg: Mapped[float | None] = mapped_column(Float, nullable=True)
    daily_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quit_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Entry(Base):
    """One value of one measure for one person on one of their local dates."""

    __tablename__ = "tracking_entry"
    __table_args__ = (UniqueConstraint("user_id", "measure_key", "local_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    measure_key: Mapped[str] = mapped_column(String(32))
    local_date: Mapped[dt.date] = mapped_column(Date)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20), default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EntryRevision(Base):
    """The value an entry had before it was logged again."""

    __tablename__ = "tracking_entry_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("tracking_entry.id", ondelete="CASCADE"), index=True)
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20), default="")
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    replaced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class InstrumentDefinition(Base):
    """A questionnaire a researcher uploaded, in the instrument file format (one row per version)."""

    __tablename__ = "instrument_definition"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                      nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuestionnaireRequest(Base):
    """A questionnaire someone (a facilitator, or a protocol) asked a person to answer, once."""

    __tablename__ = "questionnaire_request"
    __table_args__ = (Index("ix_questionnaire_request_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    instrument_key: Mapped[str] = mapped_column(String(32))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                        nullable=True)
    space_id: Mapped[int | None] = mapped_column(ForeignKey("space.id", ondelete="SET NULL"), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="facilitator")  # facilitator, protocol
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class QuestionnaireResponse(Base):
    """A scored answer to a questionnaire, with the instrument's key and version it was scored by."""

    __tablename__ = "questionnaire_response"
    __table_args__ = (Index("ix_questionnaire_response_user_id_instrument_key", "user_id", "instrument_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("questionnaire_request.id", ondelete="SET NULL"),
                                                   nullable=True, unique=True)
    instrument_key: Mapped[str] = mapped_column(String(32))
    instrument_version: Mapped[str] = mapped_column(String(32))
    answers: Mapped[list] = mapped_column(JSON)
    text_answers: Mapped[dict] = mapped_column(JSON, default=dict)
    context: Mapped[dict] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer)
    percentage: Mapped[int | None] = mapped_column(Integer, nullable=True)
    band: Mapped[str] = mapped_column(String(32))
    band_rank: Mapped[int] = mapped_column(Integer)
    alerts: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
