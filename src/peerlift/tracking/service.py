"""Every write of self-monitoring and questionnaires.

Each function checks everything first, then writes, records the event through
``events.publish`` and only flushes: the caller's unit of work commits.

Two hook lists (``tracking.hooks``) let the safety escalation react in the same transaction:
``ALERT_RAISED`` is called once per alert of a stored response, ``FREE_TEXT_ANSWERED`` once per
non-empty free-text answer.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from peerlift.community import service as community
from peerlift.community.models import CircleRole, Membership
from peerlift.db import utcnow
from peerlift.errors import Conflict, InvalidInput, NotFound
from peerlift.events import Audience, publish
from peerlift.identity.models import User
from peerlift.notify import service as notify
from peerlift.notify.models import Kind
from peerlift.policy import (
    CAN_DEFINE_INSTRUMENTS_ROLES,
    CAN_DEFINE_MEASURES_ROLES,
    CircleAccess,
    require_facilitator,
    require_role,
)
from peerlift.tracking import measures as measures_mod
from peerlift.tracking.hooks import ALERT_RAISED, FREE_TEXT_ANSWERED
from peerlift.tracking.instruments import Instrument, InstrumentInvalid, parse, shipped
from peerlift.tracking.measures import check_value, get_measure
from peerlift.tracking.models import (
    Entry,
    EntryRevision,
    InstrumentDefinition,
    Measure,
    QuestionnaireRequest,
    QuestionnaireResponse,
    TrackingProfile,
)
from peerlift.tracking.scoring import Score, UnknownInstrument, score


WEIGHT_UNITS = ("kg", "lb")
MAX_SOURCE_CHARS = 100_000


class AlreadyAnswered(Conflict):
    code = "already_answered"


# --- dates ------------------------------------------------------------------------------------

def local_today(person: User) -> dt.date:
    return utcnow().astimezone(ZoneInfo(person.timezone)).date()


def check_local_date(person: User, value: dt.date | str | None) -> dt.date:
    today = local_today(person)
    if value is None or value == "":
        return today
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(f"{value!r} is not a date (YYYY-MM-DD).", field="local_date")
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise InvalidInput("The date is a date (YYYY-MM-DD).", field="local_date")
    if value > today:
        raise InvalidInput(f"{value.isoformat()} is in the future (today is {today.isoformat()} in "
                           f"{person.timezone}).", field="local_date")
    if value < today - dt.timedelta(days=366):
        raise InvalidInput("Entries go back at most a year.", field="local_date")
    return value


# --- profile and goals --------------------------------------------------------------------------

def profile_of(session: Session, person: User) -> TrackingProfile:
    """The person's profile row (not yet written if they never set anything)."""
    profile = session.get(TrackingProfile, person.id)
    return profile if profile is not None else TrackingProfile(user_id=person.id, weight_unit="kg")


def update_goals(session: Session, person: User, *, weight_unit: str | None = None,
                 target_weight: float | str | None = None, daily_steps: int | str | None = None,
                 quit_date: dt.date | str | None = None, clear: tuple[str, ...] = ()) -> TrackingProfile:
    """Set the unit preference and goals given (None leaves a goal as it is; ``clear`` removes goals).
    A target weight is given in the person's preferred unit (after this call's ``weight_unit``)."""
    profile = profile_of(session, person)
    unit = profile.weight_unit if weight_unit in (None, "") else weight_unit
    if unit not in WEIGHT_UNITS:
        raise InvalidInput("The weight unit is kg or lb.", field="weight_unit")
    changes: dict[str, object] = {"weight_unit": unit}
    if target_weight not in (None, ""):
        try:
            kg = check_value(measures_mod.BUILTIN["weight"], target_weight, unit)
        except InvalidInput as exc:
            raise InvalidInput(exc.message.replace("Weight", "The target weight", 1), field="target_weight")
        changes["target_weight_kg"] = kg
    if daily_steps not in (None, ""):
        try:
            steps = check_value(measures_mod.BUILTIN["steps"], daily_steps)
        except InvalidInput as exc:
            raise InvalidInput(exc.message.replace("Steps", "The daily steps goal", 1), field="daily_steps")
        if steps < 1:
            raise InvalidInput("The daily steps goal is at least 1.", field="daily_steps")
        changes["daily_steps"] = int(steps)
    if quit_date not in (None, ""):
        if isinstance(quit_date, str):
            try:
                quit_date = dt.date.fromisoformat(quit_date.strip())
            except ValueError:
                raise InvalidInput(f"{quit_date!r} is not a date (YYYY-MM-DD).", field="quit_date")
        if not isinstance(quit_date, dt.date):
            raise InvalidInput("The quit date is a date (YYYY-MM-DD).", field="quit_date")
        changes["quit_date"] = quit_date
    for name in clear:
        if name not in ("target_weight", "daily_steps", "quit_date"):
            raise InvalidInput(f"No goal {name!r} to clear.", field="clear")
        changes["target_weight_kg" if name == "target_weight" else name] = None
    if session.get(TrackingProfile, person.id) is None:
        session.add(profile)
    for name, value in changes.items():
        setattr(profile, name, value)
    profile.updated_at = utcnow()
    session.flush()
    publish(session, "tracking.goals_set", Audience(user_id=person.id), actor_id=person.id,
            object_type="tracking_profile", object_id=person.id,
            data={"weight_unit": profile.weight_unit, "target_weight_kg": profile.target_weight_kg,
                  "daily_steps": profile.daily_steps,
                  "quit_date": profile.quit_date.isoformat() if profile.quit_date else None})
    return profile


# --- entries ------------------------------------------------------------------------------------

def log_entry(session: Session, person: User, measure_key: str, value, *, unit: str | None = None,
              local_date: dt.date | str | None = None) -> Entry:
    """Record today's (or an earlier day's) value; logging the same day again replaces the value
    and keeps the earlier one as a revision."""
    if not isinstance(measure_key, str) or not measure_key:
        raise InvalidInput("Say which measure to log.", field="measure")
    try:
        measure = get_measure(session, measure_key)
    except NotFound as exc:
        raise InvalidInput(exc.message, field="measure", code="unknown_measure")
    if measure.key == "weight" and unit in (None, ""):
        unit = profile_of(session, person).weight_unit
    stored = check_value(measure, value, unit)
    day = check_local_date(person, local_date)
    entry = session.scalar(select(Entry).where(Entry.user_id == person.id, Entry.measure_key == measure.key,
                                               Entry.local_date == day))
    now = utcnow()
    if entry is None:
        entry = Entry(user_id=person.id, measure_key=measure.key, local_date=day, value=stored,
                      unit=measure.unit, recorded_at=now)
        session.add(entry)
    else:
        session.add(EntryRevision(entry_id=entry.id, value=entry.value, unit=entry.unit,
                                  recorded_at=entry.recorded_at, replaced_at=now))
        entry.value, entry.unit, entry.recorded_at = stored, measure.unit, now
    session.flush()
    publish(session, "tracking.logged", Audience(user_id=person.id), actor_id=person.id,
            object_type="tracking_entry", object_id=entry.id,
            data={"measure": measure.key, "value": stored, "unit": measure.unit,
                  "local_date": day.isoformat(), "entry_id": entry.id})
    return entry


def create_measure(session: Session, actor: User, *, key: str, name: str, unit: str = "", kind: str,
                   min_value: float | None = None, max_value: float | None = None) -> Measure:
    require_role(actor, CAN_DEFINE_MEASURES_ROLES, "define measures")
    fields = measures_mod.check_definition(session, key=key, name=name, unit=unit, kind=kind,
                                           min_value=min_value, max_value=max_value)
    measure = Measure(**fields, created_by_id=actor.id)
    session.add(measure)
    session.flush()
    publish(session, "tracking.measure_created", Audience(user_id=actor.id), actor_id=actor.id, object_type="tracking_measure",
            object_id=measure.id, data={"key": measure.key, "kind": measure.kind})
    return measure


def share_progress(session: Session, access: CircleAccess, text: str | None = None):
    """Post the person's progress card to their circle, as their own post."""
    from peerlift.tracking.queries import progress_sentence

    sentence = text or progress_sentence(session, access.user)
    if not sentence:
        raise InvalidInput("There is no progress to share yet: log your weight on two days, or set a quit date.",
                           field="progress")
    return community.create_post(session, access, sentence)


# --- instruments --------------------------------------------------------------------------------

def custom_instrument(session: Session, key: str) -> Instrument | None:
    row = session.scalar(select(InstrumentDefinition).where(InstrumentDefinition.key == key)
                         .order_by(InstrumentDefinition.id.desc()).limit(1))
    return parse(row.source, f"{row.key}@{row.version}") if row is not None else None


def instrument(session: Session, key: str) -> Instrument:
    """A shipped instrument, or the newest version of one a researcher uploaded."""
    if not isinstance(key, str):
        raise UnknownInstrument("Say which instrument.", field="instrument")
    found = shipped().get(key) or custom_instrument(session, key)
    if found is None:
        raise UnknownInstrument(f"No instrument {key!r}.", field="instrument")
    return found


def all_instruments(session: Session) -> list[Instrument]:
    keys = session.scalars(select(InstrumentDefinition.key).distinct()).all()
    return list(shipped().values()) + [custom_instrument(session, k) for k in sorted(keys)]


def upload_instrument(session: Session, actor: User, source: str, filename: str = "<upload>") -> InstrumentDefinition:
    require_role(actor, CAN_DEFINE_INSTRUMENTS_ROLES, "upload questionnaires")
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput("The questionnaire file is empty.", field="source")
    if len(source) > MAX_SOURCE_CHARS:
        raise InvalidInput(f"The questionnaire file has more than {MAX_SOURCE_CHARS:,} characters.", field="source")
    try:
        inst = parse(source, filename)
    except InstrumentInvalid as exc:
        raise InvalidInput("; ".join(exc.lines()), field="source")
    if inst.key in shipped():
        raise InvalidInput(f"{inst.key!r} is a shipped instrument; choose another key.", field="source")
    exists = session.scalar(select(InstrumentDefinition.id).where(InstrumentDefinition.key == inst.key,
                                                                  InstrumentDefinition.version == inst.version))
    if exists is not None:
        raise Conflict(f"{inst.key} version {inst.version} exists already; give the file a new version.",
                       field="source")
    row = InstrumentDefinition(key=inst.key, version=inst.version, source=source, created_by_id=actor.id)
    session.add(row)
    session.flush()
    publish(session, "instrument.uploaded", Audience(user_id=actor.id), actor_id=actor.id, object_type="instrument_definition",
            object_id=row.id, data={"instrument": inst.key, "version": inst.version})
    return row


# --- requests and responses ---------------------------------------------------------------------

def request_link(request: QuestionnaireRequest) -> str:
    return f"/questionnaires/{request.id}"


def request_questionnaire(session: Session, person: User, instrument_key: str, *, requested_by: User | None,
                          space_id: int | None, source: str = "facilitator", text: str | None = None,
                          notify_person: bool = True) -> QuestionnaireRequest:
    inst = instrument(session, instrument_key)
    request = QuestionnaireRequest(user_id=person.id, instrument_key=inst.key, space_id=space_id,
                                   requested_by_id=requested_by.id if requested_by else None, source=source)
    session.add(request)
    session.flush()
    publish(session, "questionnaire.requested", Audience(user_id=person.id),
            actor_id=requested_by.id if requested_by else None, object_type="questionnaire_request",
            object_id=request.id, data={"instrument": inst.key, "request_id": request.id, "source": source})
    if notify_person:
        who = requested_by.display_name if requested_by else "Your programme"
        notify.notify(session, user_id=person.id, kind=Kind.prompt,
                      actor_id=requested_by.id if requested_by else None, space_id=space_id,
                      text=text or f"{who} asks you to fill in the {inst.short_name} questionnaire",
                      link=request_link(request))
    return request


def send_questionnaire(session: Session, access: CircleAccess, instrument_key: str,
                       user_id: int | None = None) -> list[QuestionnaireRequest]:
    """A facilitator sends a questionnaire to one member, or (no ``user_id``) to every member."""
    require_facilitator(access, "send questionnaires")
    instrument(session, instrument_key)
    query = (select(User).join(Membership, Membership.user_id == User.id)
             .where(Membership.space_id == access.space.id, User.is_active.is_(True),
                    Membership.role.in_((CircleRole.member, CircleRole.peer_supporter)))
             .order_by(User.id))
    if user_id is not None:
        query = query.where(User.id == user_id)
    people = session.scalars(query).all()
    if user_id is not None and not people:
        raise NotFound("No member with that id in this circle.", field="user_id")
    return [request_questionnaire(session, person, instrument_key, requested_by=access.user,
                                  space_id=access.space.id) for person in people]


def _check_text_answers(inst: Instrument, text_answers) -> dict[str, str]:
    text_answers = text_answers or {}
    if not isinstance(text_answers, dict):
        raise InvalidInput("Free-text answers are given by question id.", field="text_answers")
    items = {i.id: i for i in inst.text_items}
    checked: dict[str, str] = {}
    for item_id, answer in text_answers.items():
        if item_id not in items:
            raise InvalidInput(f"{inst.short_name} has no free-text question {item_id!r}.",
                               field=f"text_answers.{item_id}")
        if answer is None:
            continue
        if not isinstance(answer, str):
            raise InvalidInput("A free-text answer is text.", field=f"text_answers.{item_id}")
        answer = answer.replace("\r\n", "\n").strip()
        if len(answer) > items[item_id].max_length:
            raise InvalidInput(f"The answer has {len(answer):,} characters; the most is "
                               f"{items[item_id].max_length:,}.", field=f"text_answers.{item_id}")
        if answer:
            checked[item_id] = answer
    return checked


def submit_response(session: Session, person: User, request: QuestionnaireRequest, answers: list,
                    text_answers: dict | None = None, context: dict | None = None) -> QuestionnaireResponse:
    """Score and store the answer to a request (once: a second answer is a 409 conflict)."""
    if request.user_id != person.id:
        raise NotFound("No questionnaire request with that id.", field="request_id")
    if request.answered_at is not None:
        raise AlreadyAnswered("This questionnaire has been answered already; each request is answered once.",
                              field="request_id")
    inst = instrument(session, request.instrument_key)
    result: Score = score(inst, answers, context)
    texts = _check_text_answers(inst, text_answers)
    previous = session.scalar(select(QuestionnaireResponse).where(
        QuestionnaireResponse.user_id == person.id, QuestionnaireResponse.instrument_key == inst.key)
        .order_by(QuestionnaireResponse.id.desc()).limit(1))
    now = utcnow()
    response = QuestionnaireResponse(
        user_id=person.id, request_id=request.id, instrument_key=inst.key, instrument_version=inst.version,
        answers=list(answers), text_answers=texts, context=dict(context or {}), total=result.total,
        percentage=result.percentage, band=result.band, band_rank=result.band_rank, alerts=list(result.alerts),
        created_at=now)
    # Marking the request answered with a guarded update makes a second, concurrent submit lose.
    claimed = session.execute(update(QuestionnaireRequest).where(
        QuestionnaireRequest.id == request.id, QuestionnaireRequest.answered_at.is_(None))
        .values(answered_at=now).execution_options(synchronize_session=False)).rowcount
    if not claimed:
        raise AlreadyAnswered("This questionnaire has been answered already; each request is answered once.",
                              field="request_id")
    request.answered_at = now
    session.add(response)
    try:
        session.flush()
    except IntegrityError:
        raise AlreadyAnswered("This questionnaire has been answered already; each request is answered once.",
                              field="request_id")
    publish(session, "questionnaire.scored", Audience(user_id=person.id), actor_id=person.id,
            object_type="questionnaire_response", object_id=response.id,
            data={"instrument": inst.key, "version": inst.version, "total": result.total, "band": result.band,
                  "previous_band": previous.band if previous else None, "band_rank": result.band_rank,
                  "previous_band_rank": previous.band_rank if previous else None,
                  "alerts": list(result.alerts), "response_id": response.id})
    for alert in result.alerts:
        for hook in list(ALERT_RAISED):
            hook(session, person, response, alert)
    for item_id, answer in texts.items():
        for hook in list(FREE_TEXT_ANSWERED):
            hook(session, person, response, answer)
    return response

