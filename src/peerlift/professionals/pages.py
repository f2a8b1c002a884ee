"""HTML routes of verified professionals: applying from one's profile, and the admins' page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from peerlift.errors import Forbidden, NotFound, PeerliftError
from peerlift.identity.models import User
from peerlift.professionals import service
from peerlift.professionals.models import professions
from peerlift.web.deps import DB, CurrentUser
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=1000)]


def _mine(request: Request, db, user, *, form: dict | None = None, error: str | None = None,
          field: str | None = None, applied: bool = False, status: int = 200):
    return page(request, "professional.html", {
        "applications": service.applications_of(db, user.id), "professions": professions(),
        "form": form or {}, "error": error, "field": field, "applied": applied}, status_code=status)


@router.get("/profile/professional")
def my_professional(request: Request, db: DB, user: CurrentUser, applied: int = 0):
    return _mine(request, db, user, applied=bool(applied))


@router.post("/profile/professional")
def apply(request: Request, db: DB, user: CurrentUser, profession: Short = "", profession_other: Short = "",
          registration_number: Short = "", registry: Short = ""):
    try:
        service.apply(db, user, profession=profession, profession_other=profession_other,
                      registration_number=registration_number, registry=registry)
    except PeerliftError as exc:
        db.rollback()
        return _mine(request, db, user, error=exc.message, field=exc.field, status=exc.status_code,
                     form={"profession": profession, "profession_other": profession_other,
                           "registration_number": registration_number, "registry": registry})
    return RedirectResponse("/profile/professional?applied=1", status_code=303)


def _admin(request: Request, db, user, *, status: str | None = None, error: str | None = None,
           done: str = "", code: int = 200):
    rows = service.listing(db, user, status if status in ("applied", "verified", "rejected", "revoked") else None)
    deciders = dict(db.execute(select(User.id, User.display_name).where(
        User.id.in_({p.decided_by_id for p, _u in rows if p.decided_by_id}))).all()) if rows else {}
    return page(request, "admin_professionals.html", {"rows": rows, "status": status or "", "error": error,
                                                      "done": done, "deciders": deciders}, status_code=code)


@router.get("/admin/professionals")
def admin_professionals(request: Request, db: DB, user: CurrentUser, status: str | None = None, done: str = ""):
    return _admin(request, db, user, status=status, done=done)


def _decide(request: Request, db, user, application_id: int, action: str, reason: str):
    application = service.get_application(db, user, application_id)
    try:
        if action == "verify":
            service.verify(db, user, application)
        else:
            getattr(service, action)(db, user, application, reason)
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        return _admin(request, db, user, error=exc.message, code=exc.status_code)
    return RedirectResponse(f"/admin/professionals?done={action}", status_code=303)


@router.post("/admin/professionals/{application_id}/verify")
def verify(request: Request, application_id: int, db: DB, user: CurrentUser):
    return _decide(request, db, user, application_id, "verify", "")


@router.post("/admin/professionals/{application_id}/reject")
def reject(request: Request, application_id: int, db: DB, user: CurrentUser, reason: Short = ""):
    return _decide(request, db, user, application_id, "reject", reason)


@router.post("/admin/professionals/{application_id}/revoke")
def revoke(request: Request, application_id: int, db: DB, user: CurrentUser, reason: Short = ""):
    return _decide(request, db, user, application_id, "revoke", reason)
