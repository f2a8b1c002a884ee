"""HTML routes of sign-in, sign-up through an invitation, and the profile."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse

from peerlift.errors import InvalidInput, PeerliftError
from peerlift.identity import audit, service, two_factor
from peerlift.settings import get_settings
from peerlift.web.deps import DB, AdminUser, CurrentUser, OptionalUser, client_ip, get_auth, local_path
from peerlift.web.session_cookie import (
    CHALLENGE_COOKIE,
    clear_challenge_cookie,
    clear_session_cookie,
    set_challenge_cookie,
    set_session_cookie,
)
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
TIMEZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def _safe_next(target: str | None) -> str:
    return local_path(target, "/circles")


def _signed_in(request: Request, db, user, target: str) -> RedirectResponse:
    token, _auth = service.start_session(db, user, ip=client_ip(request),
                                         user_agent=request.headers.get("user-agent", ""),
                                         days=get_settings().session_days)
    # A person who must set up two-factor sign-in goes straight there (nothing else is open to them).
    response = RedirectResponse("/profile/two-factor" if two_factor.needs_setup(user) else _safe_next(target),
                                status_code=303)
    set_session_cookie(response, token)
    return response


@router.get("/")
def home(user: OptionalUser):
    return RedirectResponse("/circles" if user else "/login", status_code=303)


@router.get("/login")
def login_form(request: Request, user: OptionalUser, next: str | None = None, reset: int = 0):
    if user:
        return RedirectResponse(_safe_next(next), status_code=303)
    return page(request, "login.html", {"next": _safe_next(next), "email": "", "reset": bool(reset)})


@router.post("/login")
def login(request: Request, db: DB, email: Annotated[str, Form(max_length=254)] = "",
          password: Annotated[str, Form(max_length=256)] = "", next: Annotated[str, Form()] = "/circles"):
    try:
        user = service.sign_in(db, email, password, client_ip(request))
    except PeerliftError as exc:
        return page(request, "login.html", {"next": _safe_next(next), "email": email, "error": exc.message},
                    status_code=exc.status_code)
    if two_factor.is_enabled(user):
        token, _challenge = two_factor.start_challenge(db, user, ip=client_ip(request))
        response = RedirectResponse(f"/login/two-factor?next={quote(_safe_next(next))}", status_code=303)
        set_challenge_cookie(response, token, int(two_factor.CHALLENGE_VALID.total_seconds()))
        return response
    return _signed_in(request, db, user, next)


@router.get("/login/two-factor")
def login_two_factor_form(request: Request, user: OptionalUser, next: str | None = None):
    if user:
        return RedirectResponse(_safe_next(next), status_code=303)
    if not request.cookies.get(CHALLENGE_COOKIE):
        return RedirectResponse("/login", status_code=303)
    return page(request, "login_two_factor.html", {"next": _safe_next(next)})


@router.post("/login/two-factor")
def login_two_factor(request: Request, db: DB, code: Annotated[str, Form(max_length=64)] = "",
                     next: Annotated[str, Form()] = "/circles"):
    try:
        user = two_factor.complete_sign_in(db, request.cookies.get(CHALLENGE_COOKIE, ""), code, client_ip(request))
    except PeerliftError as exc:
        gone = isinstance(exc, (two_factor.ChallengeInvalid, two_factor.ChallengeExpired)) \
            or getattr(exc, "challenge_ended", False)
        response = page(request, "login_two_factor.html", {
            "next": _safe_next(next), "error": exc.message,
            "start_again": gone or isinstance(exc, service.TooManyAttempts)}, status_code=exc.status_code)
        if gone:
            clear_challenge_cookie(response)
        return response
    response = _signed_in(request, db, user, next)
    clear_challenge_cookie(response)
    return response


@router.post("/logout")
def logout(request: Request, db: DB, user: CurrentUser):
    service.end_session(db, get_auth(request, db), ip=client_ip(request))
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/profile")
def profile(request: Request, db: DB, user: CurrentUser, saved: int = 0, withdrawn: int = 0):
    from peerlift.professionals.service import current as professional_application
    from peerlift.research.pages import my_studies

    return page(request, "profile.html", {"timezones": TIMEZONES, "saved": bool(saved),
                                          "withdrawn": bool(withdrawn), "studies": my_studies(db, user),
                                          "two_factor": two_factor.status(db, user),
                                          "professional": professional_application(db, user.id)})


@router.post("/profile")
def save_profile(request: Request, db: DB, user: CurrentUser,
                 display_name: Annotated[str, Form(max_length=200)] = "",
                 pronouns: Annotated[str, Form(max_length=200)] = "",
                 bio: Annotated[str, Form(max_length=2000)] = "",
                 timezone: Annotated[str, Form(max_length=64)] = ""):
    try:
        service.update_profile(db, user, display_name=display_name, pronouns=pronouns, bio=bio, timezone=timezone)
    except PeerliftError as exc:
        db.rollback()
        return page(request, "profile.html", {"timezones": TIMEZONES, "error": exc.message, "field": exc.field,
                                              "two_factor": two_factor.status(db, user)},
                    status_code=exc.status_code)
    return RedirectResponse("/profile?saved=1", status_code=303)


@router.post("/profile/email")
def change_email(request: Request, db: DB, user: CurrentUser,
                 email: Annotated[str, Form(max_length=254)] = "",
                 password: Annotated[str, Form(max_length=256)] = ""):
    try:
        service.change_email(db, user, password, email, ip=client_ip(request))
    except PeerliftError as exc:
        db.rollback()
        return page(request, "profile.html", {"timezones": TIMEZONES, "email_error": exc.message,
                                              "new_email": email}, status_code=exc.status_code)
    return RedirectResponse("/profile?saved=1", status_code=303)


@router.post("/profile/password")
def change_password(request: Request, db: DB, user: CurrentUser,
                    current_password: Annotated[str, Form(max_length=256)] = "",
                    new_password: Annotated[str, Form(max_length=256)] = ""):
    try:
        service.change_password(db, user, current_password, new_password)
    except PeerliftError as exc:
        db.rollback()
        return page(request, "profile.html", {"timezones": TIMEZONES, "password_error": exc.message,
                                              "two_factor": two_factor.status(db, user)},
                    status_code=exc.status_code)
    return RedirectResponse("/profile?saved=1", status_code=303)


@router.get("/join/{token}")
def join_form(request: Request, token: str, db: DB):
    from peerlift.community.models import Space

    invitation = service.find_invitation(db, token)
    space = db.get(Space, invitation.space_id)
    return page(request, "join.html", {"token": token, "circle": space, "timezones": TIMEZONES,
                                       "form": {"timezone": get_settings().default_timezone}})


@router.post("/join/{token}")
def join(request: Request, token: str, db: DB,
         email: Annotated[str, Form(max_length=254)] = "",
         password: Annotated[str, Form(max_length=256)] = "",
         display_name: Annotated[str, Form(max_length=200)] = "",
         pronouns: Annotated[str, Form(max_length=40)] = "",
         timezone: Annotated[str, Form(max_length=64)] = ""):
    from peerlift.community.models import Space
    from peerlift.community.service import sign_up_with_invitation

    try:
        user, membership = sign_up_with_invitation(
            db, token=token, email=email, password=password, display_name=display_name,
            timezone=timezone, pronouns=pronouns, ip=client_ip(request))
    except PeerliftError as exc:
        db.rollback()
        invitation = service.find_invitation(db, token)
        return page(request, "join.html", {
            "token": token, "circle": db.get(Space, invitation.space_id), "timezones": TIMEZONES,
            "error": exc.message, "field": exc.field,
            "form": {"email": email, "display_name": display_name, "pronouns": pronouns, "timezone": timezone},
        }, status_code=exc.status_code)
    return _signed_in(request, db, user, f"/circles/{membership.space_id}")


@router.get("/password/forgot")
def forgot_form(request: Request):
    return page(request, "password_forgot.html", {"sent": False})


@router.post("/password/forgot")
def forgot(request: Request, db: DB, email: Annotated[str, Form(max_length=254)] = ""):
    service.request_password_reset(db, email, ip=client_ip(request))
    return page(request, "password_forgot.html", {"sent": True})


@router.get("/password/reset/{token}")
def reset_form(request: Request, token: str):
    return page(request, "password_reset.html", {"token": token})


@router.post("/password/reset/{token}")
def reset(request: Request, token: str, db: DB, password: Annotated[str, Form(max_length=256)] = ""):
    try:
        service.reset_password(db, token, password, ip=client_ip(request))
    except PeerliftError as exc:
        db.rollback()
        return page(request, "password_reset.html", {"token": token, "error": exc.message}, status_code=exc.status_code)
    response = RedirectResponse("/login?reset=1", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/profile/sessions")
def sessions(request: Request, db: DB, user: CurrentUser):
    return page(request, "sessions.html", {"sessions": service.sessions_of(db, user),
                                           "current_id": get_auth(request, db).id})


@router.post("/profile/sessions/{session_id}/revoke")
def revoke_session(request: Request, session_id: int, db: DB, user: CurrentUser):
    current = get_auth(request, db).id
    service.revoke_session(db, user, session_id, ip=client_ip(request))
    if session_id == current:
        response = RedirectResponse("/login", status_code=303)
        clear_session_cookie(response)
        return response
    return RedirectResponse("/profile/sessions", status_code=303)


# --- two-factor sign-in ------------------------------------------------------------------------

def _two_factor_page(request: Request, db, user, status_code: int = 200, **context):
    row = two_factor.pending_setup(db, user)
    setup = None
    if row is not None:
        uri = two_factor.provisioning_uri(user, row.secret)
        setup = {"qr": two_factor.qr_data_uri(uri), "secret": two_factor.grouped(row.secret)}
    response = page(request, "two_factor.html", {"status": two_factor.status(db, user), "setup": setup,
                                                  **context}, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # the key being set up stays out of caches
    return response


def _codes_page(request: Request, codes: list[str], enabled: bool):
    response = page(request, "two_factor_codes.html", {"codes": codes, "enabled": enabled})
    response.headers["Cache-Control"] = "no-store"  # shown once: not kept by the browser either
    return response


@router.get("/profile/two-factor")
def two_factor_settings(request: Request, db: DB, user: CurrentUser, disabled: int = 0):
    return _two_factor_page(request, db, user, disabled=bool(disabled))


@router.post("/profile/two-factor/setup")
def two_factor_setup(request: Request, db: DB, user: CurrentUser):
    try:
        two_factor.start_setup(db, user)
    except PeerliftError as exc:
        db.rollback()
        return _two_factor_page(request, db, user, exc.status_code, error=exc.message)
    return RedirectResponse("/profile/two-factor#confirm", status_code=303)


@router.post("/profile/two-factor/confirm")
def two_factor_confirm(request: Request, db: DB, user: CurrentUser, code: Annotated[str, Form(max_length=64)] = ""):
    try:
        codes = two_factor.confirm_setup(db, user, code, ip=client_ip(request))
    except PeerliftError as exc:
        db.rollback()
        return _two_factor_page(request, db, user, exc.status_code, error=exc.message, field=exc.field)
    return _codes_page(request, codes, enabled=True)


@router.post("/profile/two-factor/recovery-codes")
def two_factor_recovery_codes(request: Request, db: DB, user: CurrentUser,
                              code: Annotated[str, Form(max_length=64)] = ""):
    try:
        codes = two_factor.regenerate_recovery_codes(db, user, code, ip=client_ip(request))
    except PeerliftError as exc:
        db.rollback()
        return _two_factor_page(request, db, user, exc.status_code, codes_error=exc.message)
    return _codes_page(request, codes, enabled=False)


@router.post("/profile/two-factor/disable")
def two_factor_disable(request: Request, db: DB, user: CurrentUser,
                       password: Annotated[str, Form(max_length=256)] = "",
                       code: Annotated[str, Form(max_length=64)] = ""):
    try:
        two_factor.disable(db, user, password, code, ip=client_ip(request))
    except PeerliftError as exc:
        db.rollback()
        return _two_factor_page(request, db, user, exc.status_code, disable_error=exc.message)
    return RedirectResponse("/profile/two-factor?disabled=1", status_code=303)


@router.get("/admin/two-factor")
def admin_two_factor_form(request: Request, user: CurrentUser):
    from peerlift.identity.models import Role
    from peerlift.policy import require_role

    require_role(user, {Role.admin}, "reset two-factor sign-in")
    return page(request, "admin_two_factor.html", {"email": ""})


@router.post("/admin/two-factor/reset")
def admin_two_factor_reset(request: Request, db: DB, user: CurrentUser,
                           email: Annotated[str, Form(max_length=254)] = ""):
    from sqlalchemy import select

    from peerlift.errors import NotFound
    from peerlift.identity.models import Role, User
    from peerlift.policy import require_role

    require_role(user, {Role.admin}, "reset two-factor sign-in")
    try:
        target = db.scalar(select(User).where(User.email == email.strip().lower()))
        if target is None:
            raise NotFound("No account has that email address.", field="email")
        name = target.display_name
        two_factor.reset(db, user, target, ip=client_ip(request))
    except PeerliftError as exc:
        db.rollback()
        return page(request, "admin_two_factor.html", {"email": email, "error": exc.message},
                    status_code=exc.status_code)
    return page(request, "admin_two_factor.html", {"email": "", "done": name})
# --- the audit trail (admins) and a person's access log ------------------------------------------------


AUDIT_FILTERS = ("actor", "action", "object_type", "object_id", "subject", "since", "until", "ip")
Filter = Annotated[str, Query(max_length=254)]


def _day(value: str, field: str, tz: str, *, after: bool = False) -> dt.datetime | None:
    """The start of the day ``value`` (YYYY-MM-DD) in ``tz``; with ``after``, of the day after it."""
    if not value.strip():
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date: write it as YYYY-MM-DD.", field=field)
    if after:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(), ZoneInfo(tz)).astimezone(dt.UTC)


def _whole(value: str, field: str) -> int | None:
    if not value.strip():
        return None
    if not (value.strip().isascii() and value.strip().isdigit()) or int(value) > audit.MAX_ID:
        raise InvalidInput(f"{value!r} is not an id: write a whole number.", field=field)
    return int(value)


@router.get("/admin/audit")
def audit_trail(request: Request, db: DB, user: AdminUser, actor: Filter = "", action: Filter = "",
                object_type: Filter = "", object_id: Filter = "", subject: Filter = "", since: Filter = "",
                until: Filter = "", ip: Filter = "", before: Filter = "", verify: int = 0):
    """Search the audit trail, newest first; verifying the whole chain runs when asked for."""
    given = {"actor": actor, "action": action, "object_type": object_type, "object_id": object_id,
             "subject": subject, "since": since, "until": until, "ip": ip}
    context: dict = {"form": given, "entries": [], "older": None, "newest": None, "error": None, "field": None,
                     "checked": None, "broken": None, "filters": {k: v for k, v in given.items() if v}}
    status = 200
    try:
        filters = audit.Filters(actor=actor, action=action, object_type=object_type,
                                object_id=_whole(object_id, "object_id"), subject=subject,
                                since=_day(since, "since", user.timezone),
                                until=_day(until, "until", user.timezone, after=True), ip=ip)
        entries, next_before = audit.search(db, filters, before=_whole(before, "before"))
    except InvalidInput as exc:
        context.update(error=exc.message, field=exc.field)
        status = exc.status_code
    else:
        context["entries"] = entries
        if next_before is not None:
            context["older"] = "/admin/audit?" + urlencode({**context["filters"], "before": next_before})
        if before:
            context["newest"] = "/admin/audit?" + urlencode(context["filters"])
    if verify:
        context["checked"], context["broken"] = audit.verify_trail()
    return page(request, "admin_audit.html", context, status_code=status)


@router.get("/profile/access-log")
def access_log(request: Request, db: DB, user: CurrentUser, before: int | None = Query(None, ge=1, le=audit.MAX_ID)):
    entries, next_before = audit.access_log(db, user.id, before=before)
    return page(request, "access_log.html", {
        "entries": entries, "older": f"/profile/access-log?before={next_before}" if next_before else None,
        "newest": "/profile/access-log" if before else None})
