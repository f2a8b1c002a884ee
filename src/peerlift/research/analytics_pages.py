"""HTML routes of research analytics: a study's dashboard, its charts (SVG images), and the form
that adjusts staff time by hand. Only the study's researchers and admins; anyone else gets a 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from peerlift.errors import InvalidInput, PeerliftError
from peerlift.policy import study_for_analytics
from peerlift.research import consort, cost, report
from peerlift.research.metrics import cached_study_metrics
from peerlift.tracking.charts import SVG_CSP
from peerlift.web.deps import DB, CurrentUser
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
CHARTS = ("engagement", "retention", "cost", "consort")


def _dashboard(request: Request, db, study, *, error: str | None = None, field: str | None = None,
               form: dict | None = None, status: int = 200, saved: bool = False):
    metrics = cached_study_metrics(db, study)
    table, currency = cost.costs(db, study, metrics)
    return page(request, "research/dashboard.html", {
        "study": study, "metrics": metrics, "arms": report._arm_names(db, study), "costs": table,
        "currency": currency, "safety": report.safety_summary(db, study), "charts": CHARTS, "error": error,
        "field": field, "form": form or {}, "saved": saved,
        "staff": _staff(db, study), "arm_options": [(a.slug, a.name) for a in _arms(db, study)],
    }, status_code=status)


def _arms(db, study):
    from sqlalchemy import select

    from peerlift.research.models import Arm

    return db.scalars(select(Arm).where(Arm.study_id == study.id).order_by(Arm.id)).all()


def _staff(db, study) -> list[tuple[int, str, str]]:
    from sqlalchemy import select

    from peerlift.identity.models import User
    from peerlift.research.metrics import cohort

    roles = cohort(db, study).staff
    names = {uid: name for uid, name in db.execute(
        select(User.id, User.display_name).where(User.id.in_(list(roles) or [0])))}
    return [(uid, names.get(uid, f"#{uid}"), role) for uid, role in roles.items()]


@router.get("/studies/{slug}/dashboard")
def dashboard(request: Request, slug: str, db: DB, user: CurrentUser, saved: int = 0):
    return _dashboard(request, db, study_for_analytics(db, user, slug), saved=bool(saved))


@router.get("/studies/{slug}/dashboard/{chart}.svg")
def chart(slug: str, chart: str, db: DB, user: CurrentUser):
    study = study_for_analytics(db, user, slug)
    if chart not in CHARTS:
        from peerlift.errors import NotFound

        raise NotFound("No such chart.", field="chart")
    metrics = cached_study_metrics(db, study, with_fidelity=False)
    arms = report._arm_names(db, study)
    if chart == "engagement":
        svg = report.engagement_svg(metrics, arms)
    elif chart == "retention":
        svg = report.retention_svg(metrics, arms)
    elif chart == "cost":
        svg = report.cost_svg(*cost.costs(db, study, metrics))
    else:
        svg = consort.svg(consort.flow(db, study, metrics))
    return Response(svg, media_type="image/svg+xml",
                    headers={"Content-Security-Policy": SVG_CSP, "Cache-Control": "private, no-store"})


@router.post("/studies/{slug}/cost-adjustments")
def adjust(request: Request, slug: str, db: DB, user: CurrentUser,
           person: Annotated[str, Form(max_length=20)] = "", minutes: Annotated[str, Form(max_length=20)] = "",
           arm: Annotated[str, Form(max_length=64)] = "", reason: Annotated[str, Form(max_length=600)] = ""):
    study = study_for_analytics(db, user, slug)
    form = {"person": person, "minutes": minutes, "arm": arm, "reason": reason}
    try:
        if not person.strip().isdigit():
            raise InvalidInput("Choose whose time to adjust.", field="person")
        try:
            amount = int(minutes.strip())
        except ValueError:
            raise InvalidInput("Minutes are a whole number, negative to take time off.", field="minutes")
        cost.add_adjustment(db, user, study, user_id=int(person), minutes=amount, arm_slug=arm or None,
                            reason=reason)
    except PeerliftError as exc:
        db.rollback()
        study = study_for_analytics(db, user, slug)
        return _dashboard(request, db, study, error=exc.message, field=exc.field, form=form,
                          status=exc.status_code)
    return RedirectResponse(f"/studies/{slug}/dashboard?saved=1#cost", status_code=303)
