"""HTML routes of shared experience. They work without JavaScript: every action is a form that posts
and redirects back."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from peerlift.errors import Forbidden, NotFound, PeerliftError
from peerlift.experience import queries, service
from peerlift.experience.models import DURATION_UNITS, RECOMMEND
from peerlift.people import codes
from peerlift.policy import comment_access, community_access, guide_entry_access, post_access, report_access
from peerlift.web.deps import DB, CurrentUser, local_path
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=400)]
Long = Annotated[str, Form(max_length=200_000)]
Next = Annotated[str, Form(max_length=2_000)]


def _back(target: str | None, fallback: str) -> RedirectResponse:
    return RedirectResponse(local_path(target, fallback), status_code=303)


def treatment_url(community_id: int, key: str) -> str:
    return f"/communities/{community_id}/experiences/treatment?key={quote(key, safe='')}"


def _form_page(request: Request, access, *, form: dict, action: str, error: str | None = None,
               field: str | None = None, status: int = 200, editing: bool = False):
    return page(request, "experience_form.html", {
        "community": access.space, "form": form, "action": action, "error": error, "field": field,
        "editing": editing, "units": DURATION_UNITS, "recommend": RECOMMEND,
        "medicines": codes.medicines().entries}, status_code=status)


# --- experience reports ---------------------------------------------------------------------------

@router.get("/communities/{community_id}/experiences")
def experiences(request: Request, community_id: int, db: DB, user: CurrentUser):
    """What the community's members report, per treatment: counts only."""
    access = community_access(db, user, community_id)
    aggregates = queries.aggregates(db, [access.space.id])
    return page(request, "experiences.html", {
        "community": access.space, "aggregates": aggregates,
        "links": {a.treatment_key: treatment_url(access.space.id, a.treatment_key) for a in aggregates}})


@router.get("/communities/{community_id}/experiences/treatment")
def treatment(request: Request, community_id: int, db: DB, user: CurrentUser, key: str = ""):
    access = community_access(db, user, community_id)
    key = key[:200]
    found = queries.aggregates(db, [access.space.id], treatment_key=key)
    reports = queries.reports(db, access, treatment_key=key)
    if not found and not reports:
        raise NotFound("No reports of that treatment in this community.", field="key")
    return page(request, "experience_treatment.html", {
        "community": access.space, "aggregate": found[0] if found else None, "reports": reports,
        "name": found[0].treatment_name if found else reports[0].treatment_name,
        "can_curate": queries.can_curate(access),
        "in_guide": queries.in_guide(db, access.space.id, "experience", [r.id for r in reports])})


@router.get("/communities/{community_id}/experiences/new")
def new_report_form(request: Request, community_id: int, db: DB, user: CurrentUser):
    access = community_access(db, user, community_id)
    return _form_page(request, access, form={"duration_unit": "weeks"},
                      action=f"/communities/{community_id}/experiences/new")


@router.post("/communities/{community_id}/experiences/new")
def create_report(request: Request, community_id: int, db: DB, user: CurrentUser, treatment: Short = "",
                  duration_value: Annotated[str, Form(max_length=20)] = "",
                  duration_unit: Annotated[str, Form(max_length=20)] = "", what_helped: Long = "",
                  side_effects: Long = "", would_recommend: Annotated[str, Form(max_length=20)] = "",
                  body: Long = "", anonymous: Annotated[bool, Form()] = False):
    access = community_access(db, user, community_id)
    form = {"treatment": treatment, "duration_value": duration_value, "duration_unit": duration_unit,
            "what_helped": what_helped, "side_effects": side_effects, "would_recommend": would_recommend,
            "body": body, "anonymous": anonymous}
    try:
        report = service.create_report(db, access, **form)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        access = community_access(db, user, community_id)
        return _form_page(request, access, form=form, action=f"/communities/{community_id}/experiences/new",
                          error=exc.message, field=exc.field, status=exc.status_code)
    target = treatment_url(community_id, report.treatment_key)
    if report.screening.held or report.screening.message:
        return page(request, "safety/notice.html", {"s": report.screening, "what": "experience report",
                                                    "back": target})
    return RedirectResponse(target, status_code=303)


@router.get("/experiences/{report_id}")
def report_page(request: Request, report_id: int, db: DB, user: CurrentUser):
    access, report = report_access(db, user, report_id)
    view = queries.report_views(db, access, [report])[0]
    return page(request, "experience_report.html", {
        "community": access.space, "r": view, "back": f"/experiences/{report_id}",
        "treatment_link": treatment_url(access.space.id, report.treatment_key),
        "can_curate": queries.can_curate(access),
        "in_guide": bool(queries.in_guide(db, access.space.id, "experience", [report.id]))})


@router.get("/experiences/{report_id}/edit")
def edit_report_form(request: Request, report_id: int, db: DB, user: CurrentUser):
    access, report = report_access(db, user, report_id)
    if not access.can_edit(report.author_id):
        raise Forbidden("Only the author can edit an experience report.")
    form = {"treatment": report.treatment_code or report.treatment_name,
            "duration_value": report.duration_value or "", "duration_unit": report.duration_unit,
            "what_helped": report.what_helped, "side_effects": ", ".join(report.side_effects or []),
            "would_recommend": report.would_recommend, "body": report.body}
    return _form_page(request, access, form=form, action=f"/experiences/{report_id}/edit", editing=True)


@router.post("/experiences/{report_id}/edit")
def edit_report(request: Request, report_id: int, db: DB, user: CurrentUser, treatment: Short = "",
                duration_value: Annotated[str, Form(max_length=20)] = "",
                duration_unit: Annotated[str, Form(max_length=20)] = "", what_helped: Long = "",
                side_effects: Long = "", would_recommend: Annotated[str, Form(max_length=20)] = "",
                body: Long = ""):
    access, report = report_access(db, user, report_id)
    form = {"treatment": treatment, "duration_value": duration_value, "duration_unit": duration_unit,
            "what_helped": what_helped, "side_effects": side_effects, "would_recommend": would_recommend,
            "body": body}
    try:
        service.edit_report(db, access, report, **form)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        access, report = report_access(db, user, report_id)
        return _form_page(request, access, form=form, action=f"/experiences/{report_id}/edit", error=exc.message,
                          field=exc.field, status=exc.status_code, editing=True)
    return RedirectResponse(f"/experiences/{report_id}", status_code=303)


@router.post("/experiences/{report_id}/delete")
def delete_report(report_id: int, db: DB, user: CurrentUser):
    access, report = report_access(db, user, report_id)
    service.delete_report(db, access, report)
    return RedirectResponse(f"/communities/{access.space.id}/experiences", status_code=303)


# --- helpful votes --------------------------------------------------------------------------------

Bool = Annotated[bool, Form()]


@router.post("/experiences/{report_id}/helpful")
def report_helpful(report_id: int, db: DB, user: CurrentUser, on: Bool = True, next: Next = ""):
    access, report = report_access(db, user, report_id)
    service.set_helpful(db, access, "experience", report, on)
    return _back(next, f"/experiences/{report_id}")


@router.post("/posts/{post_id}/helpful")
def post_helpful(post_id: int, db: DB, user: CurrentUser, on: Bool = True, next: Next = ""):
    access, post = post_access(db, user, post_id)
    service.set_helpful(db, access, "post", post, on)
    return _back(next, f"/posts/{post_id}")


@router.post("/comments/{comment_id}/helpful")
def comment_helpful(comment_id: int, db: DB, user: CurrentUser, on: Bool = True, next: Next = ""):
    access, post, comment = comment_access(db, user, comment_id)
    service.set_helpful(db, access, "comment", comment, on)
    return _back(next, f"/posts/{post.id}#comment-{comment.id}")


# --- the guide ------------------------------------------------------------------------------------

@router.get("/communities/{community_id}/guide")
def guide(request: Request, community_id: int, db: DB, user: CurrentUser):
    access = community_access(db, user, community_id)
    return page(request, "guide.html", {"community": access.space, "items": queries.guide(db, access),
                                        "can_curate": queries.can_curate(access)})


@router.post("/communities/{community_id}/guide")
def add_to_guide(request: Request, community_id: int, db: DB, user: CurrentUser,
                 target_type: Annotated[str, Form(max_length=32)] = "",
                 target_id: Annotated[int, Form()] = 0, heading: Annotated[str, Form(max_length=2_000)] = "",
                 next: Next = ""):
    access = community_access(db, user, community_id)
    service.add_to_guide(db, access, target_type=target_type, target_id=target_id, heading=heading)
    return _back(next or f"/communities/{community_id}/guide", f"/communities/{community_id}/guide")


@router.post("/guide-entries/{guide_entry_id}/move")
def move_guide_entry(guide_entry_id: int, db: DB, user: CurrentUser,
                     direction: Annotated[str, Form(max_length=8)] = ""):
    access, entry = guide_entry_access(db, user, guide_entry_id)
    service.move_guide_entry(db, access, entry, direction)
    return RedirectResponse(f"/communities/{access.space.id}/guide#entry-{entry.id}", status_code=303)


@router.post("/guide-entries/{guide_entry_id}/delete")
def remove_from_guide(guide_entry_id: int, db: DB, user: CurrentUser):
    access, entry = guide_entry_access(db, user, guide_entry_id)
    service.remove_from_guide(db, access, entry)
    return RedirectResponse(f"/communities/{access.space.id}/guide", status_code=303)
