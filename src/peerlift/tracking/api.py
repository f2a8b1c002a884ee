"""JSON routes of self-monitoring and questionnaires: authorise through ``policy``, call one
service or query function, answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from peerlift.errors import responses
from peerlift.identity.audit import Read, record_reads
from peerlift.policy import circle_access, questionnaire_request_access, tracking_subject
from peerlift.tracking import queries, service
from peerlift.tracking.measures import MeasureDef, all_measures
from peerlift.tracking.scoring import score
from peerlift.web.deps import DB, CurrentUser, client_ip

router = APIRouter(prefix="/api/v1", tags=["tracking"])
R = responses


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class MeasureOut(BaseModel):
    key: str
    name: str
    unit: str
    kind: str
    min_value: float | None
    max_value: float | None
    builtin: bool


class MeasureIn(_In):
    key: str = Field(max_length=64)
    name: str = Field(max_length=200)
    unit: str = Field("", max_length=64)
    kind: str = Field(max_length=16, description="int, decimal or yesno")
    min_value: float | None = None
    max_value: float | None = None


class EntryIn(_In):
    measure: str = Field(max_length=64, description="a measure key, e.g. weight")
    value: Any = Field(description="a number, or yes/no (true/false) for a yes/no measure")
    unit: str | None = Field(None, max_length=16, description="weight only: kg or lb (default: the preference)")
    local_date: str | None = Field(None, max_length=32, description="YYYY-MM-DD in the person's zone; default today")


class EntryOut(_Out):
    id: int
    measure_key: str
    local_date: dt.date
    value: float
    unit: str
    recorded_at: dt.datetime


class GoalsIn(_In):
    weight_unit: str | None = Field(None, max_length=4, description="kg or lb")
    target_weight: Any = Field(None, description="in the preferred unit")
    daily_steps: Any = None
    quit_date: str | None = Field(None, max_length=32, description="YYYY-MM-DD")
    clear: list[str] = Field(default_factory=list, max_length=3, description="goals to remove")


class GoalsOut(BaseModel):
    weight_unit: str
    target_weight_kg: float | None
    daily_steps: int | None
    quit_date: dt.date | None


class ProgressOut(BaseModel):
    weight_unit: str
    start_weight: float | None
    latest_weight: float | None
    target_weight: float | None
    lost: float | None
    to_lose: float | None
    daily_steps: int | None
    steps_days_met: int | None
    quit_date: dt.date | None
    smoke_free_streak: int | None
    days_since_quit: int | None
    sentence: str


class ShareIn(_In):
    circle_id: int


class ShareOut(BaseModel):
    post_id: int
    body: str


class BandOut(BaseModel):
    key: str
    label: str
    min: int
    max: int


class InstrumentOut(BaseModel):
    key: str
    version: str
    name: str
    short_name: str
    items: int
    score_min: int
    score_max: int
    bands: list[BandOut] | dict[str, list[BandOut]]
    context: dict[str, list[str]]


class InstrumentIn(_In):
    source: str = Field(max_length=200_000, description="the instrument file (YAML)")


class ScoreIn(_In):
    answers: list[Any] = Field(max_length=200, description="the score of the chosen option of each scored item")
    context: dict[str, Any] = Field(default_factory=dict, description="e.g. {\"sex\": \"female\"} for AUDIT-C")


class ScoreOut(BaseModel):
    instrument: str
    version: str
    total: int
    band: str
    band_rank: int
    alerts: list[str]
    percentage: int | None


class SendIn(_In):
    instrument: str = Field(max_length=64)
    user_id: int | None = Field(None, description="one member; leave out for every member of the circle")


class RequestOut(_Out):
    id: int
    user_id: int
    instrument_key: str
    space_id: int | None
    source: str
    created_at: dt.datetime
    answered_at: dt.datetime | None


class ResponseIn(_In):
    answers: list[Any] = Field(max_length=200)
    text_answers: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)


class ResponseOut(_Out):
    id: int
    user_id: int
    request_id: int | None
    instrument_key: str
    instrument_version: str
    answers: list
    text_answers: dict
    context: dict
    total: int
    percentage: int | None
    band: str
    band_rank: int
    alerts: list
    created_at: dt.datetime


def _measure_out(m: MeasureDef) -> MeasureOut:
    return MeasureOut(key=m.key, name=m.name, unit=m.unit, kind=m.kind, min_value=m.min_value,
                      max_value=m.max_value, builtin=m.builtin)


def _instrument_out(inst) -> InstrumentOut:
    low, high = inst.score_range
    bands = ([BandOut(**b.model_dump()) for b in inst.bands] if isinstance(inst.bands, list) else
             {k: [BandOut(**b.model_dump()) for b in v] for k, v in inst.bands.items()})
    return InstrumentOut(key=inst.key, version=inst.version, name=inst.name, short_name=inst.short_name,
                         items=len(inst.items), score_min=low, score_max=high, bands=bands,
                         context={k: list(v.values) for k, v in inst.context.items()})


# --- measures, entries, goals ---------------------------------------------------------------------

@router.get("/tracking/measures", response_model=list[MeasureOut], responses=R(401))
def list_measures(db: DB, user: CurrentUser):
    return [_measure_out(m) for m in all_measures(db)]


@router.post("/tracking/measures", response_model=MeasureOut, status_code=201, responses=R(401, 403, 422))
def create_measure(body: MeasureIn, db: DB, user: CurrentUser):
    from peerlift.tracking.measures import from_row

    return _measure_out(from_row(service.create_measure(db, user, **body.model_dump())))


@router.get("/tracking/entries", response_model=list[EntryOut], responses=R(401, 404, 422))
def list_entries(request: Request, db: DB, user: CurrentUser, measure: str | None = None,
                 days: int = Query(90, ge=1, le=3660), user_id: int | None = None):
    person = tracking_subject(db, user, user_id if user_id is not None else user.id)
    rows = queries.entries(db, person, measure, days=days)
    what = f"entries{' of ' + measure if measure else ''}, last {days} days"
    record_reads(db, user.id, [Read("read.tracking", person.id, "user", person.id, what)], ip=client_ip(request))
    return rows


@router.post("/tracking/entries", response_model=EntryOut, status_code=201, responses=R(401, 403, 422))
def log_entry(body: EntryIn, db: DB, user: CurrentUser):
    return service.log_entry(db, user, body.measure, body.value, unit=body.unit, local_date=body.local_date)


@router.get("/tracking/goals", response_model=GoalsOut, responses=R(401))
def get_goals(db: DB, user: CurrentUser):
    p = service.profile_of(db, user)
    return GoalsOut(weight_unit=p.weight_unit or "kg", target_weight_kg=p.target_weight_kg,
                    daily_steps=p.daily_steps, quit_date=p.quit_date)


@router.put("/tracking/goals", response_model=GoalsOut, responses=R(401, 403, 422))
def set_goals(body: GoalsIn, db: DB, user: CurrentUser):
    p = service.update_goals(db, user, weight_unit=body.weight_unit, target_weight=body.target_weight,
                             daily_steps=body.daily_steps, quit_date=body.quit_date, clear=tuple(body.clear))
    return GoalsOut(weight_unit=p.weight_unit, target_weight_kg=p.target_weight_kg, daily_steps=p.daily_steps,
                    quit_date=p.quit_date)


@router.get("/tracking/progress", response_model=ProgressOut, responses=R(401, 404))
def get_progress(request: Request, db: DB, user: CurrentUser, user_id: int | None = None):
    person = tracking_subject(db, user, user_id if user_id is not None else user.id)
    progress = ProgressOut(**queries.progress(db, person).__dict__, sentence=queries.progress_sentence(db, person))
    record_reads(db, user.id, [Read("read.tracking", person.id, "user", person.id, "progress and goals")],
                 ip=client_ip(request))
    return progress


@router.post("/tracking/share", response_model=ShareOut, status_code=201, responses=R(401, 403, 404, 422))
def share(body: ShareIn, db: DB, user: CurrentUser):
    post = service.share_progress(db, circle_access(db, user, body.circle_id))
    return ShareOut(post_id=post.id, body=post.body)


# --- instruments ------------------------------------------------------------------------------------

@router.get("/instruments", response_model=list[InstrumentOut], responses=R(401))
def list_instruments(db: DB, user: CurrentUser):
    return [_instrument_out(i) for i in service.all_instruments(db)]


@router.post("/instruments", response_model=InstrumentOut, status_code=201, responses=R(401, 403, 409, 422))
def upload_instrument(body: InstrumentIn, db: DB, user: CurrentUser):
    row = service.upload_instrument(db, user, body.source)
    return _instrument_out(service.instrument(db, row.key))


@router.get("/instruments/{instrument_key}", response_model=InstrumentOut, responses=R(401, 404))
def get_instrument(instrument_key: str, db: DB, user: CurrentUser):
    return _instrument_out(service.instrument(db, instrument_key))


@router.post("/instruments/{instrument_key}/score", response_model=ScoreOut, responses=R(401, 404, 422))
def score_answers(instrument_key: str, body: ScoreIn, db: DB, user: CurrentUser):
    """Score answers without storing anything."""
    result = score(service.instrument(db, instrument_key), body.answers, body.context)
    return ScoreOut(**{k: getattr(result, k) for k in ScoreOut.model_fields})


# --- requests and responses ---------------------------------------------------------------------------

@router.post("/circles/{circle_id}/questionnaires", response_model=list[RequestOut], status_code=201,
             responses=R(401, 403, 404, 422))
def send_questionnaire(circle_id: int, body: SendIn, db: DB, user: CurrentUser):
    return service.send_questionnaire(db, circle_access(db, user, circle_id), body.instrument, body.user_id)


@router.get("/questionnaires/requests", response_model=list[RequestOut], responses=R(401))
def my_requests(db: DB, user: CurrentUser, open_only: bool = False):
    return queries.requests(db, user, open_only=open_only)


@router.get("/questionnaires/requests/{request_id}", response_model=RequestOut, responses=R(401, 404))
def get_request(request_id: int, db: DB, user: CurrentUser):
    return questionnaire_request_access(db, user, request_id)


@router.post("/questionnaires/requests/{request_id}/response", response_model=ResponseOut, status_code=201,
             responses=R(401, 404, 409, 422))
def answer(request_id: int, body: ResponseIn, db: DB, user: CurrentUser):
    return service.submit_response(db, user, questionnaire_request_access(db, user, request_id), body.answers, body.text_answers,
                                   body.context)


@router.get("/questionnaires/responses", response_model=list[ResponseOut], responses=R(401, 404))
def list_responses(request: Request, db: DB, user: CurrentUser, user_id: int | None = None,
                   instrument: str | None = None):
    person = tracking_subject(db, user, user_id if user_id is not None else user.id)
    rows = queries.responses(db, person, instrument)
    what = f"responses: {len(rows)}{', instrument ' + instrument if instrument else ''}"
    record_reads(db, user.id, [Read("read.questionnaire_responses", person.id, "user", person.id, what)],
                 ip=client_ip(request))
    return rows
