"""A study as an HL7 FHIR R4B collection Bundle, built with the fhir.resources R4B models (which
validate each resource as it is made): ResearchStudy, and per exported participant a pseudonymous
Patient, a ResearchSubject, a Consent, Observations of their self-monitoring and
QuestionnaireResponses, with a Questionnaire for each instrument answered."""

from __future__ import annotations

import datetime as dt

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.consent import Consent as FhirConsent
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse as FhirResponse
from fhir.resources.R4B.researchstudy import ResearchStudy
from fhir.resources.R4B.researchsubject import ResearchSubject
from sqlalchemy import select

from peerlift.db import utcnow
from peerlift.research.models import Consent, EnrolmentStatus

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BASE = "urn:peerlift"
# Measures with a LOINC code, and the UCUM unit of the stored value.
OBSERVATION_CODES = {
    "weight": ("29463-7", "Body weight", "kg", "kg", "vital-signs"),
    "steps": ("41950-7", "Number of steps in 24 hour Measured", "steps/day", "/d", "activity"),
    "sleep_hours": ("93832-4", "Sleep duration", "h", "h", "activity"),
}
INSTRUMENT_CODES = {"phq9": ("44249-1", "PHQ-9 quick depression assessment panel"),
                    "gad7": ("69737-5", "Generalized anxiety disorder 7 item (GAD-7)")}


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _entry(resource) -> BundleEntry:
    return BundleEntry(fullUrl=f"{BASE}:{resource.get_resource_type()}:{resource.id}", resource=resource)


def _ref(kind: str, id_: str) -> dict:
    return {"reference": f"{BASE}:{kind}:{id_}"}


def bundle(cx) -> Bundle:
    from peerlift.tracking.models import Entry, QuestionnaireResponse

    study, session = cx.study, cx.session
    sid = f"study-{study.id}"
    entries = [_entry(ResearchStudy(
        id=sid, title=study.title, status="active",
        identifier=[{"system": "https://clinicaltrials.gov", "value": study.registry_id}] if study.registry_id else None,
        description=study.description or None,
        arm=[{"name": a.slug, "description": a.name} for a in cx.arms.values()] or None,
    ))]
    consents = {c.enrolment_id: c for c in session.scalars(select(Consent).where(
        Consent.enrolment_id.in_([e.id for e in cx.people.enrolments.values()] or [0])))}
    for user_id, e in cx.people.enrolments.items():
        pid = cx.people.pid(user_id)
        entries.append(_entry(Patient(id=pid, identifier=[{"system": f"{BASE}:study:{study.slug}:pseudonym",
                                                            "value": pid}])))
        withdrawn = e.status == EnrolmentStatus.withdrawn or e.withdrawn_at is not None
        entries.append(_entry(ResearchSubject(
            id=f"subject-{pid}", status="withdrawn" if withdrawn else "on-study",
            study=_ref("ResearchStudy", sid), individual=_ref("Patient", pid),
            assignedArm=cx.arm_slug(e.arm_id), actualArm=cx.arm_slug(e.arm_id),
            period={"start": _time(e.randomised_at), "end": _time(e.withdrawn_at)} if e.withdrawn_at
            else {"start": _time(e.randomised_at)},
            consent=_ref("Consent", f"consent-{pid}") if e.id in consents else None,
        )))
        c = consents.get(e.id)
        if c is not None:
            entries.append(_entry(FhirConsent(
                id=f"consent-{pid}", status="inactive" if withdrawn else "active",
                scope={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                   "code": "research", "display": "Research"}]},
                category=[{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
                patient=_ref("Patient", pid), dateTime=_time(c.signed_at),
                policyRule={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                        "code": "OPTIN", "display": "opt-in"}],
                            "text": f"{study.title}, consent document version {c.document_version}"},
            )))
    ids = list(cx.people.enrolments) or [0]
    for entry in session.scalars(select(Entry).where(Entry.user_id.in_(ids)).order_by(Entry.id)):
        if not cx.people.keeps(entry.user_id, entry.recorded_at):
            continue
        pid = cx.people.pid(entry.user_id)
        known = OBSERVATION_CODES.get(entry.measure_key)
        if known:
            code, display, unit, ucum, category = known
            concept = {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}
            quantity = {"value": entry.value, "unit": unit, "system": UCUM, "code": ucum}
        else:
            category = "survey"
            concept = {"text": entry.measure_key}
            quantity = {"value": entry.value, "unit": entry.unit or entry.measure_key}
        entries.append(_entry(Observation(
            id=f"obs-{entry.id}", status="final", code=concept, subject=_ref("Patient", pid),
            category=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                   "code": category}]}],
            effectiveDateTime=entry.local_date.isoformat(), issued=_time(entry.recorded_at), valueQuantity=quantity,
        )))
    responses = [r for r in session.scalars(select(QuestionnaireResponse).where(QuestionnaireResponse.user_id.in_(ids))
                                            .order_by(QuestionnaireResponse.id))
                 if cx.people.keeps(r.user_id, r.created_at)]
    for key in sorted({r.instrument_key for r in responses}):
        entries.append(_entry(_questionnaire(session, key)))
    for r in responses:
        pid = cx.people.pid(r.user_id)
        inst = _instrument(session, r.instrument_key)
        scored = [i for i in inst.items if i.type == "choice"] if inst else []
        items = [{"linkId": item.id, "answer": [{"valueInteger": int(value)}]}
                 for item, value in zip(scored, r.answers) if isinstance(value, int)]
        items.append({"linkId": "total", "answer": [{"valueInteger": r.total}]})
        entries.append(_entry(FhirResponse(
            id=f"qr-{r.id}", status="completed", questionnaire=f"{BASE}:questionnaire:{r.instrument_key}",
            subject=_ref("Patient", pid), authored=_time(r.created_at), item=items,
        )))
    return Bundle(type="collection", timestamp=_time(utcnow()), entry=entries)


def _instrument(session, key: str):
    from peerlift.errors import PeerliftError
    from peerlift.tracking.service import instrument

    try:
        return instrument(session, key)
    except PeerliftError:
        return None


def _questionnaire(session, key: str) -> Questionnaire:
    inst = _instrument(session, key)
    code = INSTRUMENT_CODES.get(key)
    items = []
    if inst is not None:
        for item in inst.items:
            if item.type == "choice":
                options = item.options or inst.options or []
                items.append({"linkId": item.id, "text": item.text, "type": "choice",
                              "answerOption": [{"valueInteger": o.score} for o in options]})
            else:
                items.append({"linkId": item.id, "text": item.text, "type": "text"})
    items.append({"linkId": "total", "text": "Total score", "type": "integer", "readOnly": True})
    return Questionnaire(
        id=f"q-{key}", url=f"{BASE}:questionnaire:{key}", status="active",
        name=key.upper(), title=inst.name if inst else key, version=inst.version if inst else None,
        code=[{"system": LOINC, "code": code[0], "display": code[1]}] if code else None, item=items,
    )
