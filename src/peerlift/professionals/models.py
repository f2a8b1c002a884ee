from __future__ import annotations

import datetime as dt
import enum
from functools import cache
from pathlib import Path

from ruamel.yaml import YAML
from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime, utcnow


class Status(str, enum.Enum):
    applied = "applied"      # waiting for an admin
    verified = "verified"    # the badge shows
    rejected = "rejected"
    revoked = "revoked"      # was verified; the badge is gone everywhere


OPEN = (Status.applied.value, Status.verified.value)  # at most one of these per person


@cache
def professions() -> dict[str, str]:
    """The professions one may apply as (key -> label), shipped in professions.yaml."""
    rows = YAML(typ="safe").load((Path(__file__).parent / "professions.yaml").read_text())
    return {row["key"]: row["label"] for row in rows}


class Professional(Base):
    """One application to be shown as a verified professional, and what became of it."""

    __tablename__ = "professional"
    __table_args__ = (
        Index("ix_professional_user_id_open", "user_id", unique=True,
              sqlite_where=text("status IN ('applied', 'verified')"),
              postgresql_where=text("status IN ('applied', 'verified')")),
        Index("ix_professional_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    profession: Mapped[str] = mapped_column(String(32))
    profession_other: Mapped[str] = mapped_column(String(80), default="")  # the words of "other"
    registration_number: Mapped[str] = mapped_column(String(64))
    registry_name: Mapped[str] = mapped_column(String(120), default="")        # the register, and its country
    status: Mapped[str] = mapped_column(String(16), default=Status.applied.value)
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                      nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")

    @property
    def label(self) -> str:
        return label_of(self.profession, self.profession_other)


def label_of(profession: str | None, other: str | None = "") -> str:
    """How a profession is shown: its label, or the applicant's words for "other"."""
    if profession is None:
        return ""
    if profession == "other":
        return other or "health professional"
    return professions().get(profession, profession)
