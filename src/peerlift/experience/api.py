"""JSON routes of shared experience: experience reports and their counts, helpful votes, the guide."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from peerlift.errors import responses
from peerlift.experience import queries, service
from peerlift.experience.schemas import (
    AggregateOut,
    GuideEntryIn,
    GuideItemOut,
    GuideMoveIn,
    HelpfulOut,
    ReportIn,
    ReportOut,
    ReportPatch,
)
from peerlift.policy import comment_access, community_access, guide_entry_access, post_access, report_access
from peerlift.web.deps import DB, CurrentUser

router = APIRouter(prefix="/api/v1", tags=["experience"])
R = responses
Treatment = Annotated[str | None, Query(max_length=400, description="A treatment: its code or its words")]


def _report_out(db, access, report) -> ReportOut:
    view = queries.report_views(db, access, [report])[0]
    screening = getattr(report, "screening", None)
    return ReportOut.model_validate({**view.__dict__, "author": view.author.__dict__,
                                     "screening": screening.as_dict() if screening is not None else None})


def _key(treatment: str | None) -> str | None:
    if treatment is None or not treatment.strip():
        return None
    return service.check_treatment(treatment)[2]


# --- experience reports ---------------------------------------------------------------------------

@router.get("/communities/{community_id}/experience-reports", response_model=list[ReportOut],
            responses=R(401, 404, 422))
def list_reports(community_id: int, db: DB, user: CurrentUser, treatment: Treatment = None):
    """The community's experience reports (of one treatment if given), newest first; members only."""
    access = community_access(db, user, community_id)
    views = queries.reports(db, access, treatment_key=_key(treatment))
    return [ReportOut.model_validate({**v.__dict__, "author": v.author.__dict__}) for v in views]


@router.post("/communities/{community_id}/experience-reports", response_model=ReportOut, status_code=201,
             responses=R(401, 403, 404, 422, 429))
def create_report(community_id: int, body: ReportIn, db: DB, user: CurrentUser):
    access = community_access(db, user, community_id)
    report = service.create_report(db, access, **body.model_dump())
    return _report_out(db, access, report)


@router.get("/communities/{community_id}/experience-aggregates", response_model=list[AggregateOut],
            responses=R(401, 404, 422))
def community_aggregates(community_id: int, db: DB, user: CurrentUser, treatment: Treatment = None):
    """Per treatment: counts of reports, would-recommend answers and side effects, and the median duration."""
    access = community_access(db, user, community_id)
    return [a.__dict__ for a in queries.aggregates(db, [access.space.id], treatment_key=_key(treatment))]


@router.get("/experience-aggregates", response_model=list[AggregateOut], responses=R(401, 422))
def my_aggregates(db: DB, user: CurrentUser, treatment: Treatment = None):
    """The same counts across every community the person belongs to."""
    return [a.__dict__ for a in queries.aggregates(db, queries.community_spaces(db, user),
                                                    treatment_key=_key(treatment))]


@router.get("/experience-reports/{report_id}", response_model=ReportOut, responses=R(401, 404))
def get_report(report_id: int, db: DB, user: CurrentUser):
    access, report = report_access(db, user, report_id)
    return _report_out(db, access, report)


@router.patch("/experience-reports/{report_id}", response_model=ReportOut, responses=R(401, 403, 404, 422))
def edit_report(report_id: int, body: ReportPatch, db: DB, user: CurrentUser):
    access, report = report_access(db, user, report_id)
    report = service.edit_report(db, access, report, **body.model_dump())
    return _report_out(db, access, report)


@router.delete("/experience-reports/{report_id}", status_code=204, responses=R(401, 403, 404))
def delete_report(report_id: int, db: DB, user: CurrentUser):
    access, report = report_access(db, user, report_id)
    service.delete_report(db, access, report)
    return Response(status_code=204)


# --- helpful votes --------------------------------------------------------------------------------

def _helpful(db, access, target_type: str, target, on: bool) -> HelpfulOut:
    changed = service.set_helpful(db, access, target_type, target, on)
    count, mine = queries.helpful_counts(db, target_type, [target.id], access.user.id).get(target.id, (0, False))
    return HelpfulOut(helpful_count=count, my_helpful=mine, changed=changed)


@router.put("/posts/{post_id}/helpful", response_model=HelpfulOut, responses=R(401, 403, 404, 422))
def mark_post_helpful(post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    return _helpful(db, access, "post", post, True)


@router.delete("/posts/{post_id}/helpful", response_model=HelpfulOut, responses=R(401, 403, 404, 422))
def unmark_post_helpful(post_id: int, db: DB, user: CurrentUser):
    access, post = post_access(db, user, post_id)
    return _helpful(db, access, "post", post, False)


@router.put("/comments/{comment_id}/helpful", response_model=HelpfulOut, responses=R(401, 403, 404, 422))
def mark_comment_helpful(comment_id: int, db: DB, user: CurrentUser):
    access, _post, comment = comment_access(db, user, comment_id)
    return _helpful(db, access, "comment", comment, True)


@router.delete("/comments/{comment_id}/helpful", response_model=HelpfulOut, responses=R(401, 403, 404, 422))
def unmark_comment_helpful(comment_id: int, db: DB, user: CurrentUser):
    access, _post, comment = comment_access(db, user, comment_id)
    return _helpful(db, access, "comment", comment, False)


@router.put("/experience-reports/{report_id}/helpful", response_model=HelpfulOut, responses=R(401, 403, 404, 422))
def mark_report_helpful(report_id: int, db: DB, user: CurrentUser):
    access, report = report_access(db, user, report_id)
    return _helpful(db, access, "experience", report, True)


@router.delete("/experience-reports/{report_id}/helpful", response_model=HelpfulOut,
               responses=R(401, 403, 404, 422))
def unmark_report_helpful(report_id: int, db: DB, user: CurrentUser):
    access, report = report_access(db, user, report_id)
    return _helpful(db, access, "experience", report, False)


# --- the guide ------------------------------------------------------------------------------------

def _guide_out(db, access) -> list[GuideItemOut]:
    return [GuideItemOut.model_validate({**i.__dict__, "author": i.author.__dict__}) for i in queries.guide(db, access)]


@router.get("/communities/{community_id}/guide", response_model=list[GuideItemOut], responses=R(401, 404))
def get_guide(community_id: int, db: DB, user: CurrentUser):
    return _guide_out(db, community_access(db, user, community_id))


@router.post("/communities/{community_id}/guide", response_model=list[GuideItemOut], status_code=201,
             responses=R(401, 403, 404, 409, 422))
def add_to_guide(community_id: int, body: GuideEntryIn, db: DB, user: CurrentUser):
    access = community_access(db, user, community_id)
    service.add_to_guide(db, access, **body.model_dump())
    return _guide_out(db, access)


@router.post("/guide-entries/{guide_entry_id}/move", response_model=list[GuideItemOut],
             responses=R(401, 403, 404, 422))
def move_guide_entry(guide_entry_id: int, body: GuideMoveIn, db: DB, user: CurrentUser):
    access, entry = guide_entry_access(db, user, guide_entry_id)
    service.move_guide_entry(db, access, entry, body.direction)
    return _guide_out(db, access)


@router.delete("/guide-entries/{guide_entry_id}", status_code=204, responses=R(401, 403, 404))
def remove_from_guide(guide_entry_id: int, db: DB, user: CurrentUser):
    access, entry = guide_entry_access(db, user, guide_entry_id)
    service.remove_from_guide(db, access, entry)
    return Response(status_code=204)
