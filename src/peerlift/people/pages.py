"""HTML routes of the health profile, "people like me" and connection requests (no JavaScript needed:
the pickers are plain <datalist>s, every action a form that posts and redirects)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from peerlift.errors import PeerliftError
from peerlift.people import codes, service
from peerlift.people.models import AGE_BANDS, FIELDS, Visibility
from peerlift.policy import connection_request_access
from peerlift.web.deps import DB, CurrentUser
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=200)]
Many = Annotated[list[str], Form(max_length=40)]
VISIBILITY_LABELS = {
    Visibility.only_me.value: "Only me",
    Visibility.my_circles.value: "People in my circles",
    Visibility.my_communities.value: "People in my circles and communities",
    Visibility.installation.value: "Anyone signed in to peerlift",
}
FIELD_LABELS = {"conditions": "Conditions", "treatments": "Treatments", "goals": "Goals",
                "diagnosis_years": "Years of diagnosis", "age_band": "Age band"}
BLANK_ROWS = 2


def _coded(kind: str, value: str) -> dict:
    """"E11.9 Type 2 diabetes ..." (a picked entry) or a bare code is a code; anything else free text."""
    value = " ".join(value.split())
    first = value.split(" ", 1)[0].upper() if value else ""
    if first and codes.looks_like_code(kind, first):
        return {"code": first}
    return {"text": value}


def _shown(entry: dict) -> str:
    return f"{entry['code']} {entry['text']}" if entry.get("code") else entry.get("text", "")


def _form(profile) -> dict:
    if profile is None:
        return {"conditions": [], "treatments": [], "goals": [], "age_band": "", "suggest_me": False,
                "hidden": False, "visibility": {f: "only_me" for f in FIELDS}}
    return {"conditions": [{"value": _shown(c), "year": c["year"] or ""} for c in profile.conditions],
            "treatments": [_shown(t) for t in profile.treatments], "goals": list(profile.goals),
            "age_band": profile.age_band or "", "suggest_me": profile.suggest_me, "hidden": profile.hidden,
            "visibility": {f: getattr(profile, f"{f}_visibility") for f in FIELDS}}


def _render(request, form: dict, *, saved=False, error=None, status_code=200):
    return page(request, "health_profile.html", {
        "form": form, "saved": saved, "error": error, "blank": range(BLANK_ROWS), "age_bands": AGE_BANDS,
        "visibility_labels": VISIBILITY_LABELS, "field_labels": FIELD_LABELS,
        "conditions": codes.conditions().entries, "medicines": codes.medicines().entries}, status_code=status_code)


@router.get("/profile/health")
def health_profile(request: Request, db: DB, user: CurrentUser, saved: int = 0):
    return _render(request, _form(service.profile_of(db, user.id)), saved=bool(saved))


@router.post("/profile/health")
def save_health_profile(request: Request, db: DB, user: CurrentUser,
                        condition: Many = [], condition_year: Many = [], treatment: Many = [], goal: Many = [],
                        age_band: Short = "", vis_conditions: Short = "only_me", vis_treatments: Short = "only_me",
                        vis_goals: Short = "only_me", vis_diagnosis_years: Short = "only_me",
                        vis_age_band: Short = "only_me", suggest_me: Short = "", hidden: Short = ""):
    conditions = []
    years = list(condition_year) + [""] * len(condition)
    for i, (value, year) in enumerate(zip(condition, years)):
        if not value.strip():
            continue
        entry = _coded("conditions", value)
        year = year.strip()
        if year and not year.isdigit():
            return _error(request, db, f"The year of diagnosis of condition {i + 1} is a year, like 2019.",
                          condition, condition_year, treatment, goal, locals())
        entry["year"] = int(year) if year else None
        conditions.append(entry)
    treatments = [_coded("medicines", t) for t in treatment if t.strip()]
    visibility = {"conditions": vis_conditions, "treatments": vis_treatments, "goals": vis_goals,
                  "diagnosis_years": vis_diagnosis_years, "age_band": vis_age_band}
    try:
        service.save_profile(db, user, conditions=conditions, treatments=treatments,
                             goals=[g for g in goal if g.strip()], age_band=age_band or None, visibility=visibility,
                             suggest_me=bool(suggest_me), hidden=bool(hidden))
    except PeerliftError as exc:
        return _error(request, db, exc.message, condition, condition_year, treatment, goal, locals(),
                      status_code=exc.status_code)
    return RedirectResponse("/profile/health?saved=1", status_code=303)


def _error(request, db, message, condition, condition_year, treatment, goal, given, status_code=422):
    db.rollback()
    years = list(condition_year) + [""] * len(condition)
    form = {"conditions": [{"value": v, "year": y} for v, y in zip(condition, years) if v.strip()],
            "treatments": [t for t in treatment if t.strip()], "goals": [g for g in goal if g.strip()],
            "age_band": given["age_band"], "suggest_me": bool(given["suggest_me"]), "hidden": bool(given["hidden"]),
            "visibility": {f: given[f"vis_{f}"] for f in FIELDS}}
    return _render(request, form, error=message, status_code=status_code)


@router.get("/people/like-me")
def like_me(request: Request, db: DB, user: CurrentUser, sent: int = 0):
    profile = service.profile_of(db, user.id)
    return page(request, "like_me.html", {
        "opted_in": bool(profile and profile.suggestable), "hidden": bool(profile and profile.hidden),
        "people": service.like_me(db, user), "communities": service.communities_like_me(db, user),
        "sent": bool(sent), "weights": service.WEIGHTS})


@router.post("/people/{user_id}/connect")
def connect(request: Request, user_id: int, db: DB, user: CurrentUser,
            note: Annotated[str, Form(max_length=2000)] = ""):
    try:
        service.request_connection(db, user, user_id, note)
    except PeerliftError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        profile = service.profile_of(db, user.id)
        return page(request, "like_me.html", {
            "opted_in": bool(profile and profile.suggestable), "hidden": bool(profile and profile.hidden),
            "people": service.like_me(db, user), "communities": service.communities_like_me(db, user),
            "error": exc.message, "weights": service.WEIGHTS}, status_code=exc.status_code)
    return RedirectResponse("/people/like-me?sent=1", status_code=303)


@router.get("/people/requests")
def requests(request: Request, db: DB, user: CurrentUser):
    return page(request, "people_requests.html", {"requests": service.requests_of(db, user)})


@router.post("/people/requests/{connection_request_id}/accept")
def accept(connection_request_id: int, db: DB, user: CurrentUser):
    connection = service.accept(db, user, connection_request_access(db, user, connection_request_id))
    return RedirectResponse(f"/messages/{connection.conversation_id}", status_code=303)


@router.post("/people/requests/{connection_request_id}/decline")
def decline(connection_request_id: int, db: DB, user: CurrentUser):
    service.decline(db, user, connection_request_access(db, user, connection_request_id))
    return RedirectResponse("/people/requests", status_code=303)
