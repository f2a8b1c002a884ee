"""HTML routes of sign-in, sign-up through an invitation, and the profile."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from peerlift.errors import PeerliftError
from peerlift.identity import service
from peerlift.settings import get_settings
from peerlift.web.deps import DB, CurrentUser, OptionalUser, client_ip, get_auth, local_path
from peerlift.web.session_cookie import clear_session_cookie, set_session_cookie
from peerlift.web.templating import page

router = APIRouter(include_in_schema=False)
TIMEZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def _safe_next(target: str | None) -> str:
    return local_path(target, "/circles")


def _signed_in(request: Request, db, user, target: str) -> RedirectResponse:
    token, _auth = service.start_session(db, user, ip=client_ip(request),
                                         user_agent=request.headers.get("user-agent", ""),
                                         days=get_settings().session_days)
    response = RedirectResponse(_safe_next(target), status_code=303)
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
    return _signed_in(request, db, user, next)


@router.post("/logout")
def logout(request: Request, db: DB, user: CurrentUser):
    service.end_session(db, get_auth(request, db), ip=client_ip(request))
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/profile")
def profile(request: Request, db: DB, user: CurrentUser, saved: int = 0, withdrawn: int = 0):
    from peerlift.research.pages import my_studies

    return page(request, "profile.html", {"timezones": TIMEZONES, "saved": bool(saved),
                                          "withdrawn": bool(withdrawn), "studies": my_studies(db, user)})


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
        return page(request, "profile.html", {"timezones": TIMEZONES, "error": exc.message, "field": exc.field},
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
        return page(request, "profile.html", {"timezones": TIMEZONES, "password_error": exc.message},
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
