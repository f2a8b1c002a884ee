"""JSON routes of research analytics: a study's metrics and costs, and hand adjustments of staff time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from peerlift.errors import responses
from peerlift.identity.audit import Read, record_reads
from peerlift.policy import study_for_analytics
from peerlift.research import cost
from peerlift.research.metrics import study_metrics
from peerlift.web.deps import DB, CurrentUser, client_ip

router = APIRouter(prefix="/api/v1", tags=["research"])


class MetricsOut(BaseModel):
    study: str
    participants: list[dict[str, Any]]
    circles: list[dict[str, Any]]
    arms: list[dict[str, Any]]
    retention: dict[int, list[float]]
    fidelity: dict[int, dict[str, Any]]
    costs: list[dict[str, Any]]
    currency: str


class AdjustmentIn(BaseModel):
    user_id: int
    minutes: int = Field(description="Minutes added; negative to take time off")
    arm: str | None = Field(None, description="Arm slug; none spreads the time over the person's arms")
    reason: str = Field(max_length=500)


class AdjustmentOut(BaseModel):
    id: int
    user_id: int
    arm_id: int | None
    minutes: int
    reason: str


@router.get("/studies/{study_id}/metrics", response_model=MetricsOut, responses=responses(401, 404))
def metrics(request: Request, study_id: int, db: DB, user: CurrentUser):
    """The study's figures, with each participant's own (which puts each reading on the audit trail)."""
    study = study_for_analytics(db, user, study_id)
    m = study_metrics(db, study)
    table, currency = cost.costs(db, study, m)
    out = MetricsOut(study=study.slug, participants=m.participants, circles=m.circles, arms=m.arms,
                     retention=m.retention, fidelity=m.fidelity, costs=[row.as_dict() for row in table],
                     currency=currency)
    record_reads(db, user.id, [Read("read.study_metrics", p["user_id"], "study", study.id, study.slug)
                               for p in m.participants], ip=client_ip(request))
    return out


@router.post("/studies/{study_id}/cost-adjustments", response_model=AdjustmentOut, status_code=201,
             responses=responses(401, 403, 404, 422))
def add_adjustment(study_id: int, body: AdjustmentIn, db: DB, user: CurrentUser):
    study = study_for_analytics(db, user, study_id)
    adj = cost.add_adjustment(db, user, study, user_id=body.user_id, minutes=body.minutes, arm_slug=body.arm,
                              reason=body.reason)
    return AdjustmentOut(id=adj.id, user_id=adj.user_id, arm_id=adj.arm_id, minutes=adj.minutes, reason=adj.reason)
