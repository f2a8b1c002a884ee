"""HTML routes of self-monitoring and questionnaires. Every form works without JavaScript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from peerlift.community import queries as community_queries
from peerlift.errors import Forbidden, NotFound, PeerliftError
from peerlift.identity.audit import Read, record_reads
from peerlift.policy import (
    CAN_DEFINE_MEASURES_ROLES,
    circle_access,
    questionnaire_request_access,
    require_facilitator,
    require_role,
    tracking_subject,
)
from peerlift.tracking import charts, queries, service
from peerlift.tracking.measures import all_measures, get_measure
from peerlift.tracking.models import QuestionnaireRequest, QuestionnaireResponse
from peerlift.web.deps import DB, CurrentUser, client_ip
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=200)]


def _svg(svg: str) -> Response:
    return Response(svg, media_type="image/svg+xml",
                    headers={"Content-Security-Policy": charts.SVG_CSP, "Cache-Control": "private, no-store"})


def _tracking_page(request: Request, db, user, *, error: str | None = None, field: str | None = None,
                   status: int = 200, saved: str | None = None):
    measures = queries.cards(db, user)
    return page(request, "tracking.html", {
        "cards": measures, "progress": queries.progress(db, user), "profile": service.profile_of(db, user),
        "sentence": queries.progress_sentence(db, user), "circles": community_queries.my_circles(db, user),
        "today": service.local_today(user), "error": error, "field": field, "saved": saved,
        "open_requests": queries.requests(db, user, open_only=True),
        "charted": [c for c in measures if c.count], "subject_id": user.id,
    }, status_code=status)


@router.get("/me/tracking")
def my_tracking(request: Request, db: DB, user: CurrentUser, saved: str | None = None):
    return _tracking_page(request, db, user, saved=saved)


@router.post("/me/tracking/log")
def log(request: Request, db: DB, user: CurrentUser, measure: Short = "", value: Short = "",
        unit: Annotated[str, Form(max_length=8)] = "", local_date: Annotated[str, Form(max_length=32)] = ""):
    try:
        service.log_entry(db, user, measure, value, unit=unit or None, local_date=local_date or None)
    except PeerliftError as exc:
        db.rollback()
        return _tracking_page(request, db, user, error=exc.message, field=f"{measure}.{exc.field}",
                              status=exc.status_code)
    return RedirectResponse(f"/me/tracking?saved={measure}#measure-{measure}", status_code=303)


@router.post("/me/tracking/goals")
def goals(request: Request, db: DB, user: CurrentUser, weight_unit: Annotated[str, Form(max_length=4)] = "",
          target_weight: Short = "", daily_steps: Short = "", quit_date: Short = ""):
    try:
        service.update_goals(db, user, weight_unit=weight_unit or None, target_weight=target_weight or None,
                             daily_steps=daily_steps or None, quit_date=quit_date or None)
    except PeerliftError as exc:
        db.rollback()
        return _tracking_page(request, db, user, error=exc.message, field=f"goals.{exc.field}",
                              status=exc.status_code)
    return RedirectResponse("/me/tracking?saved=goals#goals", status_code=303)


@router.post("/me/tracking/share")
def share(request: Request, db: DB, user: CurrentUser, circle_id: Annotated[int, Form()]):
    access = circle_access(db, user, circle_id)
    try:
        post = service.share_progress(db, access)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        return _tracking_page(request, db, user, error=exc.message, field="share", status=exc.status_code)
    return RedirectResponse(f"/circles/{circle_id}#post-{post.id}", status_code=303)


@router.get("/people/{user_id}/tracking")
def person_tracking(request: Request, user_id: int, db: DB, user: CurrentUser):
    person = tracking_subject(db, user, user_id)
    if person.id == user.id:
        return RedirectResponse("/me/tracking", status_code=303)
    measures = queries.cards(db, person)
    history = queries.responses(db, person)
    reads = [Read("read.tracking", person.id, "user", person.id, "tracking page")]
    if history:
        reads.append(Read("read.questionnaire_responses", person.id, "user", person.id,
                          f"tracking page, responses: {len(history)}"))
    record_reads(db, user.id, reads, ip=client_ip(request))
    return page(request, "tracking_person.html", {
        "person": person, "progress": queries.progress(db, person), "cards": measures,
        "charted": [c for c in measures if c.count], "history": history,
        "instruments": sorted({r.instrument_key for r in history}), "subject_id": person.id,
    })


@router.get("/people/{user_id}/tracking/{measure_key}.svg")
def trend_chart(request: Request, user_id: int, measure_key: str, db: DB, user: CurrentUser):
    person = tracking_subject(db, user, user_id)
    measure = get_measure(db, measure_key)
    profile = service.profile_of(db, person)
    unit = "lb" if measure.key == "weight" and profile.weight_unit == "lb" else measure.unit
    goal = None
    if measure.key == "weight" and profile.target_weight_kg is not None:
        goal = queries.shown_value(measure, profile.target_weight_kg, profile.weight_unit)
    elif measure.key == "steps" and profile.daily_steps:
        goal = profile.daily_steps
    svg = charts.trend_svg(measure.name, queries.series(db, person, measure), unit=unit, goal=goal)
    record_reads(db, user.id, [Read("read.tracking", person.id, "user", person.id, f"chart of {measure.key}")],
                 ip=client_ip(request))
    return _svg(svg)


@router.get("/people/{user_id}/questionnaires/{key}.svg")
def score_chart(request: Request, user_id: int, key: str, db: DB, user: CurrentUser):
    person = tracking_subject(db, user, user_id)
    inst = service.instrument(db, key)
    points = [(r.created_at, r.total) for r in queries.responses(db, person, inst.key)]
    svg = charts.scores_svg(inst.short_name, points, max_total=inst.score_range[1])
    read = Read("read.questionnaire_responses", person.id, "user", person.id, f"chart of {inst.key}")
    record_reads(db, user.id, [read], ip=client_ip(request))
    return _svg(svg)


# --- questionnaires -----------------------------------------------------------------------------

@router.get("/me/questionnaires")
def my_questionnaires(request: Request, db: DB, user: CurrentUser):
    history = queries.responses(db, user)
    return page(request, "questionnaires.html", {
        "open_requests": queries.requests(db, user, open_only=True), "history": list(reversed(history)),
        "instruments": sorted({r.instrument_key for r in history}), "subject_id": user.id,
        "names": {i.key: i.short_name for i in service.all_instruments(db)},
    })


def _form(request: Request, db, user, req: QuestionnaireRequest, *, error: str | None = None,
          field: str | None = None, given: dict | None = None, status: int = 200):
    response = db.scalar(select(QuestionnaireResponse).where(QuestionnaireResponse.request_id == req.id))
    inst = service.instrument(db, req.instrument_key)
    band_label = None
    if response is not None:
        bands = inst.band_list(response.context)
        band_label = next((b.label for b in bands if b.key == response.band), response.band)
    return page(request, "questionnaire.html", {
        "req": req, "inst": inst, "response": response, "band_label": band_label, "error": error,
        "field": field, "given": given or {},
    }, status_code=status)


@router.get("/questionnaires/{request_id}")
def questionnaire(request: Request, request_id: int, db: DB, user: CurrentUser):
    return _form(request, db, user, questionnaire_request_access(db, user, request_id))


@router.post("/questionnaires/{request_id}")
async def answer(request: Request, request_id: int, db: DB, user: CurrentUser):
    form = await request.form()
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_answer, request, request_id, db, user, dict(form))


def _answer(request: Request, request_id: int, db, user, form: dict):
    req = questionnaire_request_access(db, user, request_id)
    inst = service.instrument(db, req.instrument_key)
    answers: list = []
    for n, item in enumerate(inst.scored_items):
        raw = form.get(f"item_{item.id}", "")
        if raw == "":
            return _form(request, db, user, req, error=f"Please answer question {inst.items.index(item) + 1}.",
                         field=item.id, given=form, status=422)
        answers.append(int(raw) if str(raw).lstrip("-").isdigit() else raw)
    texts = {item.id: str(form.get(f"item_{item.id}", ""))[:20_000] for item in inst.text_items}
    context = {name: form.get(f"context_{name}", "") for name in inst.context}
    try:
        service.submit_response(db, user, req, answers, texts, context)
    except PeerliftError as exc:
        db.rollback()
        req = questionnaire_request_access(db, user, request_id)
        return _form(request, db, user, req, error=exc.message, field=exc.field, given=form,
                     status=exc.status_code)
    return RedirectResponse(f"/questionnaires/{request_id}#result", status_code=303)


@router.get("/circles/{circle_id}/questionnaires")
def send_form(request: Request, circle_id: int, db: DB, user: CurrentUser, sent: int | None = None):
    access = circle_access(db, user, circle_id)
    require_facilitator(access, "send questionnaires")
    return page(request, "questionnaire_send.html", {
        "circle": access.space, "instruments": service.all_instruments(db),
        "members": [m for m in community_queries.members(db, access)
                    if m.circle_role in ("member", "peer_supporter")], "sent": sent,
    })


@router.post("/circles/{circle_id}/questionnaires")
def send(request: Request, circle_id: int, db: DB, user: CurrentUser, instrument: Short = "",
         user_id: Short = ""):
    access = circle_access(db, user, circle_id)
    try:
        target = int(user_id) if user_id.strip() else None
    except ValueError:
        target = -1
    requests = service.send_questionnaire(db, access, instrument, target)
    return RedirectResponse(f"/circles/{circle_id}/questionnaires?sent={len(requests)}", status_code=303)


# --- measures (researchers) -------------------------------------------------------------------------

def _measures_page(request: Request, db, *, error: str | None = None, form: dict | None = None, status: int = 200):
    return page(request, "measures.html", {"measures": all_measures(db), "error": error, "form": form or {}},
                status_code=status)


@router.get("/tracking/measures")
def measures(request: Request, db: DB, user: CurrentUser):
    require_role(user, CAN_DEFINE_MEASURES_ROLES, "define measures")
    return _measures_page(request, db)


def _number(value: str, field: str) -> float | None:
    from peerlift.errors import InvalidInput

    if not value.strip():
        return None
    try:
        return float(value.strip().replace(",", "."))
    except ValueError:
        raise InvalidInput("A bound of the range is a number.", field=field)


@router.post("/tracking/measures")
def create_measure(request: Request, db: DB, user: CurrentUser, key: Short = "", name: Short = "",
                   unit: Short = "", kind: Short = "", min_value: Short = "", max_value: Short = ""):
    form = {"key": key, "name": name, "unit": unit, "kind": kind, "min_value": min_value, "max_value": max_value}
    try:
        service.create_measure(db, user, key=key, name=name, unit=unit, kind=kind,
                               min_value=_number(min_value, "min_value"), max_value=_number(max_value, "max_value"))
    except PeerliftError as exc:
        if isinstance(exc, Forbidden):
            raise
        db.rollback()
        return _measures_page(request, db, error=exc.message, form=form, status=exc.status_code)
    return RedirectResponse("/tracking/measures", status_code=303)
