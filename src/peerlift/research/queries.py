"""Reads of the research domain. Nothing here returns the concealed seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from peerlift.community.models import Space
from peerlift.identity.models import Role, User
from peerlift.research.models import (
    Allocation,
    Arm,
    Consent,
    ConsentDocument,
    Enrolment,
    EnrolmentStatus,
    Study,
    StudyDesign,
    StudyMember,
)


def studies_for(session: Session, user: User) -> list[Study]:
    query = select(Study).order_by(Study.created_at.desc(), Study.id.desc())
    if user.role != Role.admin:
        query = query.join(StudyMember, StudyMember.study_id == Study.id).where(StudyMember.user_id == user.id)
    return list(session.scalars(query))


def public_design(design: StudyDesign) -> dict[str, Any]:
    """The design as pages and the API show it: everything but the seed."""
    return {"scheme": design.scheme.value, "block_sizes": list(design.block_sizes or []),
            "factors": list(design.factors or []), "eligibility": list(design.eligibility or []),
            "consent_version": design.consent_version, "withdrawal_rule": design.withdrawal_rule}


@dataclass
class StudyView:
    study: Study
    design: dict[str, Any]
    arms: list[dict[str, Any]]
    team: list[dict[str, Any]]
    documents: list[ConsentDocument]
    counts: dict[str, int]
    allocations: list[dict[str, Any]] = field(default_factory=list)


def study_view(session: Session, study: Study, allocation_limit: int = 500) -> StudyView:
    design = session.get(StudyDesign, study.id)
    circles = {arm_id: n for arm_id, n in session.execute(
        select(Space.arm_id, func.count(Space.id)).join(Arm, Arm.id == Space.arm_id)
        .where(Arm.study_id == study.id, Space.archived_at.is_(None)).group_by(Space.arm_id)).all()}
    randomised = {arm_id: n for arm_id, n in session.execute(
        select(Enrolment.arm_id, func.count(Enrolment.id)).where(
            Enrolment.study_id == study.id, Enrolment.arm_id.is_not(None)).group_by(Enrolment.arm_id)).all()}
    arms = [{"id": a.id, "slug": a.slug, "name": a.name, "description": a.description,
             "circles": circles.get(a.id, 0), "people": randomised.get(a.id, 0)}
            for a in session.scalars(select(Arm).where(Arm.study_id == study.id).order_by(Arm.id))]
    arm_names = {a["id"]: a["name"] for a in arms}
    team = [{"user_id": u.id, "display_name": u.display_name, "email": u.email, "role": m.role.value}
            for m, u in session.execute(select(StudyMember, User).join(User, User.id == StudyMember.user_id)
                                        .where(StudyMember.study_id == study.id)
                                        .order_by(StudyMember.role, User.display_name)).all()]
    documents = list(session.scalars(select(ConsentDocument).where(ConsentDocument.study_id == study.id)
                                     .order_by(ConsentDocument.created_at, ConsentDocument.id)))
    counts = {s.value: 0 for s in EnrolmentStatus}
    for status, n in session.execute(select(Enrolment.status, func.count(Enrolment.id))
                                     .where(Enrolment.study_id == study.id).group_by(Enrolment.status)).all():
        counts[status.value] = n
    by = User.__table__.alias("by")
    rows = session.execute(
        select(Allocation, by.c.display_name).outerjoin(by, by.c.id == Allocation.allocated_by_id)
        .where(Allocation.study_id == study.id).order_by(Allocation.id).limit(allocation_limit)).all()
    allocations = [{"id": a.id, "enrolment_id": a.enrolment_id, "circle_id": a.space_id, "arm_id": a.arm_id,
                    "arm": arm_names.get(a.arm_id, ""), "stratum": a.stratum, "sequence_index": a.sequence_index,
                    "allocated_by": name or "", "allocated_at": a.allocated_at} for a, name in rows]
    return StudyView(study, public_design(design), arms, team, documents, counts, allocations)


def enrolments_of(session: Session, user: User) -> list[tuple[Enrolment, Study]]:
    return [(e, s) for e, s in session.execute(
        select(Enrolment, Study).join(Study, Study.id == Enrolment.study_id)
        .where(Enrolment.user_id == user.id).order_by(Enrolment.started_at.desc())).all()]


def consent_of(session: Session, enrolment: Enrolment) -> tuple[Consent, ConsentDocument] | None:
    row = session.execute(select(Consent, ConsentDocument).join(ConsentDocument,
                                                                ConsentDocument.id == Consent.document_id)
                          .where(Consent.enrolment_id == enrolment.id)).first()
    return (row[0], row[1]) if row else None


def consent_text(study: Study, consent: Consent, document: ConsentDocument, person: User) -> str:
    """A plain-text copy of a signed consent, for the person to keep."""
    lines = [f"{study.title}", f"{document.title} (version {document.version})"]
    if study.registry_id:
        lines.append(f"Registry: {study.registry_id}")
    if study.ethics_ref:
        lines.append(f"Ethics approval: {study.ethics_ref}")
    lines.append("")
    for section in document.sections:
        mark = "[x]" if section["key"] in consent.sections_confirmed else "[ ]"
        lines += [f"{mark} {section['heading']}", "", section["text"], ""]
    from peerlift.research.service import deletion_rule, deletion_rule_text

    lines += ["If you delete your peerlift account", "", deletion_rule_text(deletion_rule(document)), ""]
    lines += [f"Signed by: {consent.typed_name} ({person.email})",
              f"Signed at: {consent.signed_at.isoformat(timespec='seconds')} (UTC)"]
    return "\n".join(lines) + "\n"
