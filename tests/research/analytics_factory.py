"""A small world for research analytics: enrolment rows written directly (the enrolment flow is
not what these tests are about), and activity written through the product's services at chosen
moments, so every action is also an event."""

from __future__ import annotations

import datetime as dt

from peerlift.community import service as community
from peerlift.db import clock_at, utcnow
from peerlift.policy import circle_access
from peerlift.research.models import (
    Allocation,
    Consent,
    ConsentDocument,
    Enrolment,
    EnrolmentStatus,
    StudyDesign,
)

START = (utcnow() - dt.timedelta(days=21)).replace(hour=9, minute=0, second=0, microsecond=0)


def at(day: float, hours: float = 0) -> dt.datetime:
    """A moment ``day`` days (and ``hours``) after the study's start."""
    return START + dt.timedelta(days=day, hours=hours)


def design(s, study, **values) -> StudyDesign:
    row = StudyDesign(study_id=study.id, concealed_seed="s3cret-seed", **values)
    s.add(row)
    s.flush()
    return row


def enrol(s, study, person, arm, circle, *, day: float = 0, status=EnrolmentStatus.randomised,
          withdrawal_data: str = "", answers: dict | None = None, sequence: list | None = None) -> Enrolment:
    """An enrolment through screening, consent and randomisation, as the rows those steps leave."""
    doc = s.query(ConsentDocument).filter_by(study_id=study.id).first()
    if doc is None:
        doc = ConsentDocument(study_id=study.id, version="1.0", title="Consent",
                              sections=[{"key": "data", "heading": "Your data", "text": "..."}])
        s.add(doc)
        s.flush()
    e = Enrolment(study_id=study.id, user_id=person.id, status=status, started_at=at(day - 1),
                  screening_answers=answers or {}, screened_at=at(day - 1), consented_at=at(day - 0.5))
    if status in (EnrolmentStatus.randomised, EnrolmentStatus.withdrawn):
        e.randomised_at, e.arm_id, e.space_id = at(day), arm.id, circle.id
    if status == EnrolmentStatus.withdrawn:
        e.withdrawn_at, e.withdrawal_reason, e.withdrawal_data = at(day + 10), "moved away", withdrawal_data
    if status == EnrolmentStatus.ineligible:
        e.exclusion_reason, e.consented_at = "under 18", None
    s.add(e)
    s.flush()
    if e.consented_at is not None:
        s.add(Consent(enrolment_id=e.id, document_id=doc.id, document_version="1.0", sections_confirmed=["data"],
                      typed_name=person.display_name, signed_at=e.consented_at))
    if e.randomised_at is not None:
        index = sequence.pop(0) if sequence else e.id
        s.add(Allocation(study_id=study.id, enrolment_id=e.id, arm_id=arm.id, stratum="", sequence_index=index,
                         allocated_at=e.randomised_at))
    s.flush()
    return e


def post(s, person, circle, body: str, moment: dt.datetime):
    with clock_at(moment):
        return community.create_post(s, circle_access(s, person, circle.id), body, confirm_personal_information=True)


def comment(s, person, circle, on, body: str, moment: dt.datetime):
    with clock_at(moment):
        return community.create_comment(s, circle_access(s, person, circle.id), on, body)


def react(s, person, circle, on, moment: dt.datetime, kind: str = "heart"):
    with clock_at(moment):
        community.set_reaction(s, circle_access(s, person, circle.id), kind=kind, on=True, post=on)


def log(s, person, measure: str, value, day: int, unit: str | None = None):
    from peerlift.tracking import service as tracking

    moment = at(day, 10)
    with clock_at(moment):
        return tracking.log_entry(s, person, measure, value, unit=unit, local_date=moment.date())


def questionnaire(s, person, coach, day: int, answers: list | None = None):
    from peerlift.tracking import service as tracking

    with clock_at(at(day, 1)):
        request = tracking.request_questionnaire(s, person, "phq9", requested_by=coach, space_id=None,
                                                 notify_person=False)
    if answers is not None:
        with clock_at(at(day, 2)):
            tracking.submit_response(s, person, request, answers)
    return request
