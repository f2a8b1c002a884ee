"""A protocol as HL7 FHIR R4B: a PlanDefinition whose actions point at one ActivityDefinition
per item, in a collection Bundle. Built with the fhir.resources R4B models, which validate."""

from __future__ import annotations

from fhir.resources.R4B.activitydefinition import ActivityDefinition
from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.plandefinition import PlanDefinition, PlanDefinitionAction, PlanDefinitionActionCondition

from peerlift.protocols.format import Item, Protocol

BASE = "urn:peerlift:protocol"
UCUM = "http://unitsofmeasure.org"
WEEKDAY_CODES = {"mon": "mon", "tue": "tue", "wed": "wed", "thu": "thu", "fri": "fri", "sat": "sat", "sun": "sun"}


def timing(item: Item, duration: int) -> dict:
    first, last = item.span(duration)
    repeat: dict = {
        "timeOfDay": [f"{item.at}:00"],
        "boundsRange": {"low": {"value": first, "unit": "day", "system": UCUM, "code": "d"},
                        "high": {"value": last, "unit": "day", "system": UCUM, "code": "d"}},
    }
    if item.day is not None:
        repeat.update(count=1)
    elif item.every is not None:
        count, unit = item.repetition()
        repeat.update(frequency=1, period=count, periodUnit=unit)
    elif item.weekdays is not None:
        repeat.update(dayOfWeek=[WEEKDAY_CODES[d] for d in item.weekdays])
    else:
        repeat.update(frequency=1, period=1, periodUnit="d")
    return {"repeat": repeat}


def _condition_text(item: Item) -> str | None:
    if item.condition is None:
        return None
    parts = []
    if item.condition.inactive_days:
        parts.append(f"the person has not been active for {item.condition.inactive_days} days")
    if item.condition.no_posts_days:
        parts.append(f"the person has not posted for {item.condition.no_posts_days} days")
    if item.condition.circle_quiet_hours:
        parts.append(f"nobody has posted in the circle for {item.condition.circle_quiet_hours} hours")
    return " and ".join(parts)


def activity(protocol: Protocol, item: Item) -> ActivityDefinition:
    return ActivityDefinition(
        id=f"{protocol.id}-{item.id}"[:64],
        url=f"{BASE}:{protocol.id}:activity:{item.id}",
        version=protocol.version,
        name=item.id.replace("-", "_"),
        title=item.id,
        status="active",
        description=item.text,
        kind="Task" if item.kind == "questionnaire" else "CommunicationRequest",
        code={"text": f"{item.kind} via {item.channel}"
              + (f" ({item.questionnaire})" if item.questionnaire else "")},
        timingTiming=timing(item, protocol.duration_days),
        participant=[{"type": "related-person" if item.audience == "circle" else "patient"}],
    )


def plan_definition(protocol: Protocol) -> PlanDefinition:
    actions = []
    for item in protocol.items:
        action = PlanDefinitionAction(
            id=item.id,
            title=item.id,
            description=item.text,
            timingTiming=timing(item, protocol.duration_days),
            definitionCanonical=f"{BASE}:{protocol.id}:activity:{item.id}",
        )
        text = _condition_text(item)
        if text:
            action.condition = [PlanDefinitionActionCondition(
                kind="applicability", expression={"language": "text/plain", "expression": text})]
        actions.append(action)
    return PlanDefinition(
        id=protocol.id[:64],
        url=f"{BASE}:{protocol.id}",
        version=protocol.version,
        name=protocol.id.replace("-", "_"),
        title=protocol.title,
        status="active",
        type={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                          "code": "clinical-protocol", "display": "Clinical Protocol"}]},
        description=protocol.description,
        action=actions,
    )


def to_bundle(protocol: Protocol) -> Bundle:
    plan = plan_definition(protocol)
    entries = [BundleEntry(fullUrl=plan.url, resource=plan)]
    entries += [BundleEntry(fullUrl=f"{BASE}:{protocol.id}:activity:{item.id}", resource=activity(protocol, item))
                for item in protocol.items]
    return Bundle(type="collection", entry=entries)
