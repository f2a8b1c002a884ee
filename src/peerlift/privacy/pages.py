"""HTML routes of a person's data rights: the download page, the deletion page, and the admin's
deletion of an account on request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from peerlift.errors import Forbidden, NotFound, PeerliftError
from peerlift.identity.models import Role
from peerlift.policy import account_for_deletion, require_role
from peerlift.privacy import deletion, export
from peerlift.privacy.api import download
from peerlift.web.deps import DB, CurrentUser, client_ip
from peerlift.web.session_cookie import clear_session_cookie
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)


@router.get("/profile/data")
def data_page(request: Request, user: CurrentUser):
    return page(request, "data.html", {"kinds": export.KINDS})


@router.get("/profile/data/download")
def data_download(request: Request, db: DB, user: CurrentUser):
    return download(request, db, user)


def _deletion_page(request: Request, db, user, *, error: str | None = None, field: str | None = None,
                   status: int = 200):
    return page(request, "delete_account.html", {"plan": deletion.plan(db, user), "error": error, "field": field,
                                                 "rules": deletion.OUTSIDE_RULES}, status_code=status)


@router.get("/profile/delete")
def deletion_form(request: Request, db: DB, user: CurrentUser):
    return _deletion_page(request, db, user)


@router.post("/profile/delete")
def delete_account(request: Request, db: DB, user: CurrentUser,
                   password: Annotated[str, Form(max_length=256)] = "", confirm: Annotated[bool, Form()] = False):
    try:
        deletion.delete_account(db, user, user, password=password, confirm=confirm, ip=client_ip(request))
    except PeerliftError as exc:
        db.rollback()
        return _deletion_page(request, db, user, error=exc.message, field=exc.field, status=exc.status_code)
    response = RedirectResponse("/account-deleted", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/account-deleted")
def account_deleted(request: Request):
    return page(request, "account_deleted.html", {})


# --- admins: deletion on request -------------------------------------------------------------------------

def _admin_page(request: Request, db, user, *, email: str = "", error: str | None = None,
                field: str | None = None, status: int = 200, deleted: bool = False, reason: str = ""):
    target = plan = None
    if email:
        found = deletion.account_by_email(db, email)
        if found is None:
            if error is None:
                error, field, status = "No account with that email address.", "email", 404
        else:
            target = account_for_deletion(db, user, found)
            plan = deletion.plan(db, target)
    return page(request, "admin_accounts.html", {"email": email, "target": target, "plan": plan, "error": error,
                                                 "field": field, "deleted": deleted, "reason": reason},
                status_code=status)


@router.get("/admin/accounts")
def admin_accounts(request: Request, user: CurrentUser, deleted: int = 0):
    require_role(user, {Role.admin}, "delete other people's accounts")
    return page(request, "admin_accounts.html", {"email": "", "deleted": bool(deleted)})


@router.post("/admin/accounts")
def admin_lookup(request: Request, db: DB, user: CurrentUser, email: Annotated[str, Form(max_length=254)] = ""):
    """Find the account by its address (a form post: the address stays out of URLs and logs)."""
    require_role(user, {Role.admin}, "delete other people's accounts")
    return _admin_page(request, db, user, email=email)


@router.post("/admin/accounts/{user_id}/delete")
def admin_delete(request: Request, user_id: int, db: DB, user: CurrentUser,
                 password: Annotated[str, Form(max_length=256)] = "",
                 reason: Annotated[str, Form(max_length=2000)] = "",
                 confirm: Annotated[bool, Form()] = False):
    target = account_for_deletion(db, user, user_id)
    email = target.email
    try:
        deletion.delete_account(db, user, target, password=password, confirm=confirm, reason=reason,
                                ip=client_ip(request))
    except PeerliftError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        db.rollback()
        return _admin_page(request, db, user, email=email, error=exc.message, field=exc.field,
                           status=exc.status_code, reason=reason)
    return RedirectResponse("/admin/accounts?deleted=1", status_code=303)
