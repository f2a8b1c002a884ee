"""Two-factor sign-in: TOTP (RFC 6238) codes from an authenticator app, and single-use recovery codes.

Setting it up: a secret is made (``start_setup``) and shown as a QR code and as text; it is in use
only once a current code from the app confirms it (``confirm_setup``), which also makes ten recovery
codes, shown once (only hashes of them are kept).

Signing in: after the right password, a person with two-factor sign-in gets a challenge instead of a
session (``start_challenge``): a random token, bound to them, valid for a few minutes and a few
attempts. Only the right code for it (``complete_sign_in``) opens the real session. Every refused code
counts as a failed sign-in for throttling and is written to the audit trail.

Each TOTP code is accepted once: the newest time step accepted is kept per person, and a code whose
step is not newer is refused, even within its validity window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from peerlift.db import utcnow
from peerlift.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated
from peerlift.events import Audience, publish
from peerlift.identity import service
from peerlift.identity.models import RecoveryCode, Role, TwoFactor, TwoFactorChallenge, User
from peerlift.settings import get_settings

ISSUER = "peerlift"
CHALLENGE_VALID = dt.timedelta(minutes=5)
CHALLENGE_ATTEMPTS = 5
RECOVERY_CODES = 10
# Lower-case letters and digits that cannot be mistaken for each other (no 0/o, 1/l/i).
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 10
VALID_WINDOW = 1  # one time step (30 s) either side of now: phones' clocks drift a little
TOTP_RE = re.compile(r"^\d{6}$")


class TwoFactorSetupRequired(Forbidden):
    code = "two_factor_required"


class ChallengeInvalid(NotAuthenticated):
    code = "challenge_invalid"


class ChallengeExpired(NotAuthenticated):
    code = "challenge_expired"


class SignInCodeRefused(NotAuthenticated):
    """A code refused at the second step of sign-in; ``challenge_ended`` when it was the last try."""

    code = "invalid_code"
    challenge_ended = False


class CodeRefused(InvalidInput):
    """A code refused while setting up or changing two-factor sign-in."""

    code = "invalid_code"


# Why a code was refused: (error code, message).
REFUSALS = {
    "format": ("invalid_code", "Enter the 6-digit code from your authenticator app."),
    "format_or_recovery": ("invalid_code",
                           "Enter the 6-digit code from your authenticator app, or one of your recovery codes."),
    "wrong": ("invalid_code", "That code is not right. Enter the newest code from your authenticator app "
                              "(and check that your phone's clock is right)."),
    "reused": ("code_used", "That code was used already. Wait for the next code from your app."),
    "recovery_used": ("recovery_code_used", "That recovery code was used already: each one works once."),
}
SETUP_MESSAGE = ("Your role needs two-factor sign-in. Set it up first, at /profile/two-factor; "
                 "until then nothing else is open to you.")


# --- who needs it --------------------------------------------------------------------------------

def required_for(user: User) -> bool:
    """The installation asks people of this role to sign in with a second factor."""
    return user.role.value in get_settings().two_factor_role_set


def needs_setup(user: User) -> bool:
    """Signed in, of a role that needs two-factor sign-in, and without it: only set-up is open."""
    return user.two_factor_enabled_at is None and required_for(user)


def is_enabled(user: User) -> bool:
    return user.two_factor_enabled_at is not None


@dataclass(frozen=True)
class Status:
    enabled: bool
    enabled_at: dt.datetime | None
    required: bool
    setup_pending: bool
    recovery_codes_left: int


def status(session: Session, user: User) -> Status:
    row = session.get(TwoFactor, user.id)
    left = session.scalar(select(func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))) if is_enabled(user) else 0
    return Status(enabled=is_enabled(user), enabled_at=user.two_factor_enabled_at, required=required_for(user),
                  setup_pending=row is not None and not is_enabled(user), recovery_codes_left=left or 0)


# --- setting it up -------------------------------------------------------------------------------

def start_setup(session: Session, user: User) -> TwoFactor:
    """A new secret, not in use until a code confirms it. Starting again replaces it."""
    if is_enabled(user):
        raise Conflict("Two-factor sign-in is on already. Turn it off first to use another app.",
                       code="two_factor_enabled")
    row = session.get(TwoFactor, user.id)
    if row is None:
        row = TwoFactor(user_id=user.id, secret=pyotp.random_base32())
        session.add(row)
    else:
        row.secret, row.created_at, row.last_step = pyotp.random_base32(), utcnow(), None
    session.flush()
    return row


def pending_setup(session: Session, user: User) -> TwoFactor | None:
    """The secret being set up (shown on the set-up page), or None."""
    if is_enabled(user):
        return None
    return session.get(TwoFactor, user.id)


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The otpauth URI as an SVG QR code in a data: URI, for an <img> (the CSP allows data: images)."""
    import segno

    return segno.make(uri, error="m").svg_data_uri(scale=5, border=4, dark="#000", light="#fff")


def grouped(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def confirm_setup(session: Session, user: User, code: str, ip: str = "") -> list[str]:
    """Turn two-factor sign-in on with a current code from the app; returns the recovery codes
    (shown once)."""
    if is_enabled(user):
        raise Conflict("Two-factor sign-in is on already.", code="two_factor_enabled")
    row = session.get(TwoFactor, user.id)
    if row is None:
        raise Conflict("Start the set-up first: it shows the code to scan.", code="two_factor_not_started")
    outcome = _check_totp(session, row, code)
    if outcome != "ok":
        _refuse(session, user.id, ip, outcome, "set-up", CodeRefused)
    user.two_factor_enabled_at = utcnow()
    codes = _new_recovery_codes(session, user)
    service.audit(session, user.id, "two_factor.enabled", "user", user.id, ip=ip)
    publish(session, "two_factor.enabled", Audience(user_id=user.id), actor_id=user.id, object_type="user",
            object_id=user.id)
    return codes


def regenerate_recovery_codes(session: Session, user: User, code: str, ip: str = "") -> list[str]:
    """Ten new recovery codes for a current code from the app; the old ones stop working."""
    row = _enabled_row(session, user)
    outcome = _check_totp(session, row, code)
    if outcome != "ok":
        _refuse(session, user.id, ip, outcome, "new recovery codes", CodeRefused)
    codes = _new_recovery_codes(session, user)
    service.audit(session, user.id, "two_factor.recovery_codes_regenerated", "user", user.id, ip=ip)
    return codes


def disable(session: Session, user: User, password: str, code: str, ip: str = "") -> None:
    """Turn two-factor sign-in off: the password and a current code (or a recovery code) are needed."""
    row = _enabled_row(session, user)
    if not service.password_matches(user, password):
        raise service.InvalidCredentials("The password is not right.", field="password")
    outcome = _check_code(session, row, code, recovery=True, ip=ip)
    if outcome not in ("ok", "recovery"):
        _refuse(session, user.id, ip, outcome, "turning it off", CodeRefused, recovery=True)
    _remove(session, user)
    service.audit(session, user.id, "two_factor.disabled", "user", user.id, ip=ip)
    publish(session, "two_factor.disabled", Audience(user_id=user.id), actor_id=user.id, object_type="user",
            object_id=user.id)


def reset(session: Session, admin: User, target: User, ip: str = "") -> None:
    """An admin turns a person's two-factor sign-in off (a lost phone); they sign in with the password
    alone, and set it up again (at once, when their role needs it)."""
    from peerlift.policy import require_role

    require_role(admin, {Role.admin}, "reset two-factor sign-in")
    if not is_enabled(target) and session.get(TwoFactor, target.id) is None:
        raise Conflict(f"{target.display_name} has no two-factor sign-in to reset.", code="two_factor_not_enabled")
    _remove(session, target)
    service.audit(session, admin.id, "two_factor.reset", "user", target.id, ip=ip)
    publish(session, "two_factor.reset", Audience(user_id=target.id), actor_id=admin.id, object_type="user",
            object_id=target.id)


def _enabled_row(session: Session, user: User) -> TwoFactor:
    row = session.get(TwoFactor, user.id) if is_enabled(user) else None
    if row is None:
        raise Conflict("Two-factor sign-in is not on.", code="two_factor_not_enabled")
    return row


def _remove(session: Session, user: User) -> None:
    session.execute(delete(TwoFactor).where(TwoFactor.user_id == user.id))
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.execute(delete(TwoFactorChallenge).where(TwoFactorChallenge.user_id == user.id))
    user.two_factor_enabled_at = None
    session.flush()


# --- recovery codes ------------------------------------------------------------------------------

def _recovery_hash(user_id: int, code: str) -> str:
    return hashlib.sha256(f"{user_id}:{code}".encode()).hexdigest()


def _normalise_recovery(code: str) -> str | None:
    code = re.sub(r"[\s-]", "", code).lower()
    if len(code) != RECOVERY_LENGTH or any(c not in RECOVERY_ALPHABET for c in code):
        return None
    return code


def _new_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))
             for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(user.id, c)) for c in codes)
    session.flush()
    half = RECOVERY_LENGTH // 2
    return [f"{c[:half]}-{c[half:]}" for c in codes]


# --- checking a code -----------------------------------------------------------------------------

def _check_totp(session: Session, row: TwoFactor, code: str) -> str:
    """"ok" (and the step is taken: the code will not work again), "format", "wrong" or "reused"."""
    code = re.sub(r"\s", "", code or "")
    if not TOTP_RE.match(code):
        return "format"
    totp = pyotp.TOTP(row.secret)
    now = totp.timecode(utcnow())
    matched = [step for step in range(now - VALID_WINDOW, now + VALID_WINDOW + 1)
               if hmac.compare_digest(totp.generate_otp(step), code)]
    if not matched:
        return "wrong"
    step = max(matched)
    # Atomic against a second request with the same code: only one moves the step on.
    taken = session.execute(update(TwoFactor).where(
        TwoFactor.user_id == row.user_id, or_(TwoFactor.last_step.is_(None), TwoFactor.last_step < step))
        .values(last_step=step).execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        return "reused"
    session.expire(row, ["last_step"])
    return "ok"


def _check_code(session: Session, row: TwoFactor, code: str, *, recovery: bool, ip: str = "") -> str:
    """A TOTP code, or (when ``recovery``) a recovery code, which is used up: "ok", "recovery",
    or why not."""
    code = code or ""
    if TOTP_RE.match(re.sub(r"\s", "", code)):
        return _check_totp(session, row, code)
    normal = _normalise_recovery(code) if recovery else None
    if normal is None:
        return "format_or_recovery" if recovery else "format"
    match = session.scalar(select(RecoveryCode).where(
        RecoveryCode.user_id == row.user_id, RecoveryCode.code_hash == _recovery_hash(row.user_id, normal)))
    if match is None:
        return "wrong"
    used = session.execute(update(RecoveryCode).where(RecoveryCode.id == match.id, RecoveryCode.used_at.is_(None))
                           .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if used.rowcount != 1:
        return "recovery_used"
    left = session.scalar(select(func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == row.user_id, RecoveryCode.used_at.is_(None)))
    service.audit(session, row.user_id, "two_factor.recovery_code_used", "user", row.user_id, ip=ip[:64],
                  detail=f"{left} left")
    return "recovery"


def _refuse(session: Session, user_id: int, ip: str, outcome: str, where: str, error: type,
            *, recovery: bool = False, extra: str = "", rollback: bool = True) -> None:
    """Write down the refused code (audit trail) whatever happens to the request, then refuse it:
    what the request wrote so far is rolled back (unless the caller did and wrote what must stay)."""
    code, message = REFUSALS["format_or_recovery" if outcome == "format" and recovery else outcome]
    if rollback:
        session.rollback()
    service.audit(session, user_id, "two_factor.failed", "user", user_id, ip=ip[:64], detail=f"{code} at {where}")
    session.commit()
    raise error(message + extra, field="code", code=code)


# --- signing in ----------------------------------------------------------------------------------

def start_challenge(session: Session, user: User, ip: str = "") -> tuple[str, TwoFactorChallenge]:
    """The password was right: a challenge (token shown once) that a code must answer."""
    now = utcnow()
    session.execute(delete(TwoFactorChallenge).where(TwoFactorChallenge.expires_at <= now))
    token = secrets.token_urlsafe(32)
    challenge = TwoFactorChallenge(token_hash=service.token_hash(token), user_id=user.id, created_at=now,
                                   expires_at=now + CHALLENGE_VALID, ip_address=ip[:64])
    session.add(challenge)
    session.flush()
    return token, challenge


def complete_sign_in(session: Session, token: str, code: str, ip: str = "") -> User:
    """The second step: the challenge's person, once the code is right. A refused code counts as a
    failed sign-in and uses up one of the challenge's attempts; both are committed here (as a failed
    password is) although the request answers an error."""
    if not token or len(token) > 128:
        raise ChallengeInvalid("This sign-in is not valid any more. Sign in again with your password.",
                               field="challenge")
    challenge = session.scalar(select(TwoFactorChallenge).where(
        TwoFactorChallenge.token_hash == service.token_hash(token)).with_for_update())
    if challenge is None:
        raise ChallengeInvalid("This sign-in is not valid any more. Sign in again with your password.",
                               field="challenge")
    if challenge.expires_at <= utcnow():
        raise ChallengeExpired("The code came too late: a sign-in waits 5 minutes for it. "
                               "Sign in again with your password.", field="challenge")
    user = session.get(User, challenge.user_id)
    row = session.get(TwoFactor, user.id)
    if not user.is_active or not is_enabled(user) or row is None:
        raise ChallengeInvalid("This sign-in is not valid any more. Sign in again with your password.",
                               field="challenge")
    service.check_login_allowed(session, user.email, ip)
    outcome = _check_code(session, row, code, recovery=True, ip=ip)
    if outcome in ("ok", "recovery"):
        session.delete(challenge)
        session.flush()
        return user
    challenge_id, user_id, email = challenge.id, user.id, user.email
    session.rollback()
    session.execute(update(TwoFactorChallenge).where(TwoFactorChallenge.id == challenge_id)
                    .values(attempts=TwoFactorChallenge.attempts + 1).execution_options(synchronize_session=False))
    attempts = session.scalar(select(TwoFactorChallenge.attempts).where(TwoFactorChallenge.id == challenge_id))
    extra = ""
    if attempts is not None and attempts >= CHALLENGE_ATTEMPTS:
        session.execute(delete(TwoFactorChallenge).where(TwoFactorChallenge.id == challenge_id))
        extra = " That was the last try for this sign-in: sign in again with your password."
    service.count_login_failure(session, email, ip)
    try:
        _refuse(session, user_id, ip, outcome, "sign-in", SignInCodeRefused, recovery=True, extra=extra,
                rollback=False)
    except SignInCodeRefused as exc:
        exc.challenge_ended = bool(extra)
        raise
    raise AssertionError("unreachable")
