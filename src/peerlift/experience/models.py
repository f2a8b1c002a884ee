from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from peerlift.db import Base, UTCDateTime, utcnow
from peerlift.identity.models import User

DURATION_UNITS: tuple[str, ...] = ("days", "weeks", "months", "years", "ongoing")
RECOMMEND: tuple[str, ...] = ("yes", "no", "unsure")
HELPFUL_TARGETS: tuple[str, ...] = ("post", "comment", "experience")
GUIDE_TARGETS: tuple[str, ...] = HELPFUL_TARGETS


class ExperienceReport(Base):
    """One member's structured account of a treatment or strategy, in an open community."""

    __tablename__ = "experience_report"
    __table_args__ = (Index("ix_experience_report_space_id_treatment_key", "space_id", "treatment_key"),
                      Index("ix_experience_report_author_id_created_at", "author_id", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    treatment_code: Mapped[str | None] = mapped_column(String(16), nullable=True)  # ATC code from the shipped list
    treatment_name: Mapped[str] = mapped_column(String(120))    # the list's name, or the free text as written
    treatment_key: Mapped[str] = mapped_column(String(120))     # what reports are grouped by
    duration_value: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_unit: Mapped[str] = mapped_column(String(8))       # days, weeks, months, years or ongoing
    duration_days: Mapped[int | None] = mapped_column(Integer, nullable=True)  # for the median
    what_helped: Mapped[str] = mapped_column(Text, default="")
    side_effects: Mapped[list[str]] = mapped_column(JSON, default=list)
    would_recommend: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    search_text: Mapped[str] = mapped_column(Text, default="")  # what search finds it by
    anonymous: Mapped[bool] = mapped_column(default=False)
    visibility: Mapped[str] = mapped_column(String(8), default="visible")  # safety.models.Visibility
    removed_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    author: Mapped[User] = relationship(lazy="raise")

    @property
    def screening_text(self) -> str:
        """What triage reads and reviewers see: every part the author wrote."""
        return self.search_text


class HelpfulVote(Base):
    """One person finding one post, answer (comment) or experience report helpful."""

    __tablename__ = "helpful_vote"
    __table_args__ = (
        UniqueConstraint("user_id", "target_type", "target_id"),
        Index("ix_helpful_vote_target_type_target_id", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    target_type: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GuideEntry(Base):
    """A post, answer or experience report a community's facilitators put in its guide."""

    __tablename__ = "guide_entry"
    __table_args__ = (
        UniqueConstraint("space_id", "target_type", "target_id"),
        Index("ix_guide_entry_space_id_position", "space_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"))
    target_type: Mapped[str] = mapped_column(String(20))
    target_id: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(String(200), default="")
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True)
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
