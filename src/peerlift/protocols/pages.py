"""HTML routes: a circle's protocol (assign, migrate) and its fidelity report."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from peerlift.errors import NotFound, PeerliftError
from peerlift.protocols import fidelity, service
from peerlift.protocols.models import Assignment, AssignmentStatus, ProtocolVersion
from peerlift.web.deps import DB, CurrentUser
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)


def _context(db, space) -> dict:
    assignments = db.scalars(select(Assignment).where(Assignment.space_id == space.id)
                             .order_by(Assignment.id.desc())).all()
    versions = db.scalars(select(ProtocolVersion).order_by(ProtocolVersion.protocol_key, ProtocolVersion.id)).all()
    by_id = {v.id: v for v in versions}
    active = next((a for a in assignments if a.status == AssignmentStatus.active), None)
    return {"circle": space, "assignments": assignments, "versions": versions, "by_id": by_id, "active": active,
            "report": fidelity.report(db, circle_id=space.id).as_dict(),
            "today": dt.date.today().isoformat()}


@router.get("/circles/{circle_id}/protocol")
def protocol_page(request: Request, circle_id: int, db: DB, user: CurrentUser):
    space = service.manager_access(db, user, circle_id)
    return page(request, "protocol.html", _context(db, space))


@router.post("/circles/{circle_id}/protocol")
def assign(request: Request, circle_id: int, db: DB, user: CurrentUser,
           protocol_version_id: Annotated[int, Form()], start_date: Annotated[str, Form(max_length=10)] = "",
           reason: Annotated[str, Form(max_length=500)] = ""):
    space = service.manager_access(db, user, circle_id)
    try:
        version = db.get(ProtocolVersion, protocol_version_id)
        if version is None:
            raise NotFound("No protocol version with that id.", field="protocol_version_id")
        active = db.scalar(select(Assignment).where(Assignment.space_id == space.id,
                                                    Assignment.status == AssignmentStatus.active))
        if active is not None:
            service.migrate(db, user, active, version, reason)
        else:
            try:
                start = dt.date.fromisoformat(start_date)
            except ValueError:
                from peerlift.errors import InvalidInput

                raise InvalidInput("The start date is not a date (YYYY-MM-DD).", field="start_date")
            service.assign(db, user, space, version, start)
    except PeerliftError as exc:
        db.rollback()
        return page(request, "protocol.html", {**_context(db, space), "error": exc.message},
                    status_code=exc.status_code)
    return RedirectResponse(f"/circles/{circle_id}/protocol", status_code=303)
