from __future__ import annotations

from starlette.responses import Response

from peerlift.settings import get_settings
from peerlift.web.deps import SESSION_COOKIE


def set_session_cookie(response: Response, token: str) -> None:
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE, token, max_age=settings.session_days * 86400, httponly=True,
        secure=settings.secure_cookies, samesite="lax", path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=get_settings().secure_cookies, httponly=True,
                           samesite="lax")


# The half-way state of a sign-in in a browser: the password was right, a code is owed.
CHALLENGE_COOKIE = "peerlift_2fa"


def set_challenge_cookie(response: Response, token: str, seconds: int) -> None:
    response.set_cookie(CHALLENGE_COOKIE, token, max_age=seconds, httponly=True,
                        secure=get_settings().secure_cookies, samesite="lax", path="/login")


def clear_challenge_cookie(response: Response) -> None:
    response.delete_cookie(CHALLENGE_COOKIE, path="/login", secure=get_settings().secure_cookies, httponly=True,
                           samesite="lax")
