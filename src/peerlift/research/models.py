from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime, utcnow


class Study(Base):
    __tablename__ = "study"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    registry_id: Mapped[str] = mapped_column(String(64), default="")
    ethics_ref: Mapped[str] = mapped_column(String(120), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    target_size: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Arm(Base):
    """An arm of a study. Circles belong to at most one arm; members of one arm never see another's."""

    __tablename__ = "arm"
    __table_args__ = (UniqueConstraint("study_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")


class StudyRole(str, enum.Enum):
    researcher = "researcher"
    facilitator = "facilitator"
    clinician = "clinician"


class StudyMember(Base):
    """The study's team: who may see its data, run its circles and answer its escalations."""

    __tablename__ = "study_member"
    __table_args__ = (UniqueConstraint("study_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[StudyRole] = mapped_column(Enum(StudyRole, native_enum=False, length=16))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Randomisation(str, enum.Enum):
    simple = "simple"
    blocks = "blocks"          # permuted blocks of random size
    stratified = "stratified"  # permuted blocks within each stratum of the declared factors
    cluster = "cluster"        # whole circles are the units


class StudyDesign(Base):
    """How a study allocates: the scheme, its factors, and the concealed seed. The seed is never
    shown by any route or export before the allocations it drives have been made."""

    __tablename__ = "study_design"

    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), primary_key=True)
    scheme: Mapped[Randomisation] = mapped_column(Enum(Randomisation, native_enum=False, length=16),
                                                  default=Randomisation.blocks)
    factors: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"key": "sex", "values": [...]}, ...]
    block_sizes: Mapped[list[Any]] = mapped_column(JSON, default=list)  # e.g. [2, 4, 6] (multiples of arms)
    concealed_seed: Mapped[str] = mapped_column(String(128))
    eligibility: Mapped[list[Any]] = mapped_column(JSON, default=list)  # screening questions with rules
    consent_version: Mapped[str] = mapped_column(String(32), default="")
    withdrawal_rule: Mapped[str] = mapped_column(Text, default="")  # what happens to a withdrawn person's data
    hourly_rates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # {"facilitator": 40.0, ...}
    fixed_costs: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"arm": "a"|null, "item", "amount"}]
    currency: Mapped[str] = mapped_column(String(3), default="GBP")
    dprp_orgcode: Mapped[str] = mapped_column(String(32), default="")


class ConsentDocument(Base):
    """A versioned consent document; a person confirms each section."""

    __tablename__ = "consent_document"
    __table_args__ = (UniqueConstraint("study_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    sections: Mapped[list[Any]] = mapped_column(JSON)  # [{"key", "heading", "text"}]
    # What deleting one's account does to the study's data: keep_pseudonymised or delete ("" for
    # documents written before the rule was recorded: PEERLIFT_DELETION_IN_STUDY applies).
    on_account_deletion: Mapped[str] = mapped_column(String(24), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EnrolmentStatus(str, enum.Enum):
    invited = "invited"
    ineligible = "ineligible"      # screened out, with the reason
    eligible = "eligible"          # screened in, not yet consented
    consented = "consented"
    declined = "declined"          # did not consent
    randomised = "randomised"
    withdrawn = "withdrawn"


class Enrolment(Base):
    """One person's way through a study: screening, consent, randomisation, withdrawal.
    The CONSORT flow is counted from these rows."""

    __tablename__ = "enrolment"
    __table_args__ = (UniqueConstraint("study_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True,
                                                index=True)
    status: Mapped[EnrolmentStatus] = mapped_column(Enum(EnrolmentStatus, native_enum=False, length=16),
                                                    default=EnrolmentStatus.invited)
    screening_answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    exclusion_reason: Mapped[str] = mapped_column(Text, default="")
    strata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # declared factor values
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    screened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    consented_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    randomised_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    arm_id: Mapped[int | None] = mapped_column(ForeignKey("arm.id", ondelete="SET NULL"), nullable=True)
    space_id: Mapped[int | None] = mapped_column(ForeignKey("space.id", ondelete="SET NULL"), nullable=True)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    withdrawal_reason: Mapped[str] = mapped_column(Text, default="")
    withdrawal_data: Mapped[str] = mapped_column(String(16), default="")  # "keep" or "delete" (the stated rule)


class Consent(Base):
    """A signed consent: the document version, each section confirmed, the typed name, the time."""

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"), unique=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("consent_document.id", ondelete="RESTRICT"))
    document_version: Mapped[str] = mapped_column(String(32))
    sections_confirmed: Mapped[list[Any]] = mapped_column(JSON)
    typed_name: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str] = mapped_column(String(64), default="")


class Allocation(Base):
    """Every allocation, logged: who, when, stratum, arm, and its place in the concealed sequence.
    Units are people (``enrolment_id``) or, in cluster randomisation, circles (``space_id``)."""

    __tablename__ = "allocation"
    __table_args__ = (UniqueConstraint("study_id", "stratum", "sequence_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    enrolment_id: Mapped[int | None] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"), nullable=True,
                                                     unique=True)
    space_id: Mapped[int | None] = mapped_column(ForeignKey("space.id", ondelete="SET NULL"), nullable=True)
    arm_id: Mapped[int] = mapped_column(ForeignKey("arm.id", ondelete="CASCADE"))
    stratum: Mapped[str] = mapped_column(String(200), default="")
    sequence_index: Mapped[int] = mapped_column(Integer)
    allocated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                        nullable=True)
    allocated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StudyInvitation(Base):
    """A link that invites people into a study's enrolment (screening, consent, randomisation).
    Only a hash of its token is stored."""

    __tablename__ = "study_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"),
                                                      nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str] = mapped_column(String(200), default="")
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
