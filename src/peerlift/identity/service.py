"""Every write of the identity domain: accounts, sign-in sessions, invitations, audit."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import re
import secrets
import unicodedata
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from peerlift.db import transaction, utcnow
from peerlift.settings import get_settings
from peerlift.errors import PeerliftError, Conflict, Gone, InvalidInput, NotAuthenticated, NotFound
from peerlift.events import Audience, publish
from peerlift.identity import audit as audit_trail
from peerlift.identity.models import AuthSession, LoginFailure, Invitation, Role, User

log = logging.getLogger(__name__)


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"


class InvitationUnusable(Gone):
    code = "invitation_unusable"


_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to check a password against when nobody has that address, so the answer takes as
    long as for a real account. Made on first use: hashing at import slowed every process start."""
    return _hasher.hash("peerlift-timing-equaliser")


EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MIN_PASSWORD = 10
SESSION_TOUCH_EVERY = dt.timedelta(minutes=5)
# Domains that keep schedules in a person's local time register here (protocols does).
TIMEZONE_CHANGED: list = []


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_rules(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"The password needs at least {MIN_PASSWORD} characters.", field=field)
    if len(password) > 256:
        raise InvalidInput("The password may have at most 256 characters.", field=field)


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise InvalidInput("That is not an email address.", field="email")
    return email


def check_timezone(name: str, field: str = "timezone") -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"Unknown time zone {name!r}; use an IANA name such as Europe/Berlin.", field=field)
    return name


def check_display_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("A display name is needed.", field="display_name")
    if len(name) > 80:
        raise InvalidInput("The display name may have at most 80 characters.", field="display_name")
    return name


def _unique_handle(session: Session, display_name: str) -> str:
    base = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9]+", "", base)[:24] or "member"
    taken = set(session.scalars(select(User.handle).where(User.handle.like(f"{base}%"))))
    if base not in taken:
        return base
    n = 2
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


def audit(session: Session, actor_id: int | None, action: str, object_type: str = "",
          object_id: int | None = None, ip: str = "", detail: str = "") -> None:
    """Add an entry to the hash-chained audit trail; it is chained and written as the unit commits."""
    audit_trail.record(session, actor_id, action, object_type, object_id, ip, detail)


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    display_name: str,
    role: Role = Role.participant,
    timezone: str,
    pronouns: str = "",
    bio: str = "",
    actor_id: int | None = None,
) -> User:
    email = normalise_email(email)
    check_password_rules(password)
    display_name = check_display_name(display_name)
    check_timezone(timezone)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with this email address exists already.", field="email")
    user = User(
        email=email,
        handle=_unique_handle(session, display_name),
        password_hash=hash_password(password),
        display_name=display_name,
        pronouns=pronouns.strip()[:40],
        bio=bio.strip()[:500],
        timezone=timezone,
        role=role,
    )
    session.add(user)
    session.flush()
    audit(session, actor_id or user.id, "user.created", "user", user.id, detail=role.value)
    publish(session, "user.created", Audience(user_id=user.id), actor_id=actor_id or user.id,
            object_type="user", object_id=user.id)
    return user


class TooManyAttempts(PeerliftError):
    status_code = 429
    code = "too_many_attempts"


def check_login_allowed(session: Session, email: str, ip: str) -> None:
    """Refuse to try a password after too many recent failures for the account or from the address."""
    settings = get_settings()
    since = utcnow() - dt.timedelta(minutes=settings.login_window_minutes)
    by_account = session.scalar(select(func.count(LoginFailure.id)).where(
        LoginFailure.email_hash == _email_hash(email), LoginFailure.at > since))
    if by_account >= settings.login_failures_per_account:
        raise TooManyAttempts(f"Too many failed sign-ins for this account. Try again in "
                              f"{settings.login_window_minutes} minutes, or reset your password.", field="email")
    if ip:
        by_address = session.scalar(select(func.count(LoginFailure.id)).where(
            LoginFailure.ip_address == ip[:64], LoginFailure.at > since))
        if by_address >= settings.login_failures_per_address:
            raise TooManyAttempts(f"Too many failed sign-ins from this address. Try again in "
                                  f"{settings.login_window_minutes} minutes.")


def count_login_failure(session: Session, email: str, ip: str) -> None:
    """A failed sign-in that counts toward throttling (a wrong password, or a wrong second-factor code)."""
    session.add(LoginFailure(email_hash=_email_hash(email), ip_address=ip[:64]))


def record_login_failure(session: Session, email: str, ip: str) -> None:
    count_login_failure(session, email, ip)
    audit(session, None, "login.failed", "user", None, ip=ip[:64], detail=f"account {_email_hash(email)[:12]}")


def _email_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def sign_in(session: Session, email: str, password: str, ip: str) -> User:
    """Check the password, within the throttling limits. A failure is recorded and committed here,
    the one exception to "services only flush": the request that failed answers an error and its
    unit of work rolls back, but the failure must count."""
    check_login_allowed(session, email, ip)
    try:
        return authenticate(session, email, password)
    except InvalidCredentials:
        session.rollback()
        record_login_failure(session, email, ip)
        session.commit()
        raise


def authenticate(session: Session, email: str, password: str) -> User:
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.is_active:
        try:
            _hasher.verify(_dummy_hash(), password)
        except VerificationError:
            pass
        raise InvalidCredentials("The email address or the password is not right.")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise InvalidCredentials("The email address or the password is not right.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def password_matches(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def start_session(session: Session, user: User, *, ip: str = "", user_agent: str = "",
                  days: int = 14) -> tuple[str, AuthSession]:
    """Sign ``user`` in; returns the cookie value (shown once) and the session row."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    auth = AuthSession(
        token_hash=token_hash(token),
        csrf_token=secrets.token_urlsafe(32),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(days=days),
        ip_address=ip[:64],
        user_agent=user_agent[:255],
    )
    session.add(auth)
    session.flush()
    audit(session, user.id, "session.started", "user", user.id, ip=ip)
    publish(session, "session.started", Audience(user_id=user.id), actor_id=user.id,
            object_type="user", object_id=user.id)
    return token, auth


@functools.cache
def _session_by_token():
    """Built once: every request looks its sign-in up by it."""
    return select(AuthSession).where(AuthSession.token_hash == bindparam("token_hash"))


def resolve_session(session: Session, token: str | None, *, days: int = 14,
                    defer: Callable[[Callable[[], None]], object] | None = None) -> AuthSession | None:
    """The live session for a cookie value, or None. Extends it at most every few minutes; with
    ``defer``, the extension is handed to it (to run in a write transaction of its own, elsewhere)
    instead of being written here."""
    if not token or len(token) > 128:
        return None
    auth = session.scalar(_session_by_token(), {"token_hash": token_hash(token)})
    now = utcnow()
    if auth is None or auth.expires_at <= now or not auth.user.is_active:
        return None
    if now - auth.last_seen_at > SESSION_TOUCH_EVERY:
        touch = (update(AuthSession).where(AuthSession.id == auth.id)
                 .values(last_seen_at=now, expires_at=now + dt.timedelta(days=days)))
        if defer is not None:
            defer(functools.partial(_touch_apart, touch))
        elif session.get_bind().get_execution_options().get("peerlift_write") or \
                session.get_bind().dialect.name != "sqlite":
            session.execute(touch)
        else:
            # A read transaction must not turn into a write on SQLite (it would fail if anything
            # committed since it began): the touch gets a short write transaction of its own.
            _touch_apart(touch)
    return auth


def _touch_apart(touch) -> None:
    try:
        with transaction() as write:
            write.execute(touch)
    except Exception:  # the session is extended on a later request instead
        log.exception("extending a session failed")


def end_session(session: Session, auth: AuthSession, ip: str = "") -> None:
    session.delete(auth)
    audit(session, auth.user_id, "session.ended", "user", auth.user_id, ip=ip)


def sessions_of(session: Session, user: User) -> list[AuthSession]:
    """The person's signed-in browsers and clients that have not expired, most recently seen first."""
    return list(session.scalars(select(AuthSession).where(AuthSession.user_id == user.id,
                                                          AuthSession.expires_at > utcnow())
                                .order_by(AuthSession.last_seen_at.desc())))


def revoke_session(session: Session, user: User, session_id: int, ip: str = "") -> None:
    """Sign one of one's own sessions out (another device, or this one)."""
    target = session.get(AuthSession, session_id)
    if target is None or target.user_id != user.id:
        raise NotFound("No session with that id.", field="session_id")
    session.delete(target)
    audit(session, user.id, "session.revoked", "user", user.id, ip=ip, detail=f"session {session_id}")


def update_profile(session: Session, user: User, *, display_name: str | None = None,
                   pronouns: str | None = None, bio: str | None = None,
                   timezone: str | None = None) -> User:
    if display_name is not None:
        user.display_name = check_display_name(display_name)
    if pronouns is not None:
        if len(pronouns.strip()) > 40:
            raise InvalidInput("Pronouns may have at most 40 characters.", field="pronouns")
        user.pronouns = pronouns.strip()
    if bio is not None:
        if len(bio.strip()) > 500:
            raise InvalidInput("The bio may have at most 500 characters.", field="bio")
        user.bio = bio.strip()
    moved = timezone is not None and check_timezone(timezone) != user.timezone
    if timezone is not None:
        user.timezone = timezone
    session.flush()
    if moved:
        for reschedule in TIMEZONE_CHANGED:
            reschedule(session, user)
    audit(session, user.id, "profile.updated", "user", user.id)
    publish(session, "profile.updated", Audience(user_id=user.id), actor_id=user.id,
            object_type="user", object_id=user.id)
    return user


def change_password(session: Session, user: User, current: str, new: str) -> None:
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise InvalidCredentials("The current password is not right.", field="current_password")
    check_password_rules(new, "new_password")
    user.password_hash = hash_password(new)
    audit(session, user.id, "password.changed", "user", user.id)
    publish(session, "password.changed", Audience(user_id=user.id), actor_id=user.id, object_type="user",
            object_id=user.id)


def confirm_password(session: Session, user: User, password: str, *, ip: str = "", field: str = "password") -> None:
    """The signed-in person types their password again before a grave step. A wrong one counts, and
    is throttled, like a failed sign-in: it is recorded and committed here, while the rest of the unit
    of work rolls back (nothing of the step is written)."""
    check_login_allowed(session, user.email, ip)
    try:
        _hasher.verify(user.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        email = user.email
        session.rollback()
        record_login_failure(session, email, ip)
        session.commit()
        raise InvalidCredentials("The password is not right.", field=field)


def change_email(session: Session, user: User, password: str, email: str, ip: str = "") -> User:
    """A new sign-in address, confirmed with the current password (it is what signs in)."""
    email = normalise_email(email)
    confirm_password(session, user, password, ip=ip)
    if email == user.email:
        return user
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with this email address exists already.", field="email")
    user.email = email
    session.flush()
    audit(session, user.id, "email.changed", "user", user.id, ip=ip)
    publish(session, "email.changed", Audience(user_id=user.id), actor_id=user.id, object_type="user",
            object_id=user.id)
    return user


# --- invitations -----------------------------------------------------------------------

def create_invitation(session: Session, *, space_id: int, created_by: User, days_valid: int,
                      max_uses: int, note: str = "", email: str | None = None) -> tuple[str, Invitation]:
    if not 1 <= days_valid <= 90:
        raise InvalidInput("An invitation is valid for 1 to 90 days.", field="days_valid")
    if not 1 <= max_uses <= 500:
        raise InvalidInput("An invitation allows 1 to 500 sign-ups.", field="max_uses")
    if email:
        email = normalise_email(email)
    token = secrets.token_urlsafe(24)
    invitation = Invitation(
        token_hash=token_hash(token),
        space_id=space_id,
        created_by_id=created_by.id,
        expires_at=utcnow() + dt.timedelta(days=days_valid),
        max_uses=max_uses,
        note=note.strip()[:200],
    )
    session.add(invitation)
    session.flush()
    audit(session, created_by.id, "invitation.created", "space", space_id, detail=f"invitation {invitation.id}")
    publish(session, "invitation.created", Audience(space_id=space_id), actor_id=created_by.id,
            object_type="invitation", object_id=invitation.id)
    if email:
        from peerlift.delivery.scheduler import schedule

        schedule(session, "email.invitation", {"to": email, "token": token, "inviter": created_by.display_name},
                 due_at=utcnow(), dedupe_key=f"invitation:{invitation.id}:{email}")
    return token, invitation


def find_invitation(session: Session, token: str, *, for_update: bool = False) -> Invitation:
    """The usable invitation for a token; a clear error when it is unknown, expired or used up."""
    query = select(Invitation).where(Invitation.token_hash == token_hash(token))
    if for_update:
        query = query.with_for_update()
    invitation = session.scalar(query)
    if invitation is None or invitation.revoked_at is not None:
        raise NotFound("This invitation link is not valid.", field="token", code="invitation_not_found")
    if invitation.expires_at <= utcnow():
        raise InvitationUnusable("This invitation has expired. Ask your coach for a new link.", field="token")
    if invitation.uses >= invitation.max_uses:
        raise InvitationUnusable("This invitation has been used up. Ask your coach for a new link.", field="token")
    return invitation


# --- password reset --------------------------------------------------------------------------

RESET_VALID = dt.timedelta(hours=1)


def request_password_reset(session: Session, email: str, ip: str = "") -> None:
    """Email a reset link if an account has this address. Says nothing either way."""
    from peerlift.delivery.scheduler import schedule
    from peerlift.identity.models import PasswordReset

    user = session.scalar(select(User).where(User.email == email.strip().lower(), User.is_active.is_(True)))
    if user is None:
        return
    token = secrets.token_urlsafe(32)
    reset = PasswordReset(token_hash=token_hash(token), user_id=user.id, expires_at=utcnow() + RESET_VALID)
    session.add(reset)
    session.flush()
    audit(session, user.id, "password.reset_requested", "user", user.id, ip=ip)
    schedule(session, "email.password_reset", {"to": user.email, "token": token}, due_at=utcnow(),
             dedupe_key=f"password_reset:{reset.id}")


def reset_password(session: Session, token: str, new_password: str, ip: str = "") -> User:
    from peerlift.identity.models import PasswordReset

    reset = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == token_hash(token)).with_for_update())
    if reset is None:
        raise NotFound("This reset link is not valid.", field="token", code="reset_not_found")
    if reset.used_at is not None:
        raise InvitationUnusable("This reset link was used already. Ask for a new one.", field="token",
                                 code="reset_used")
    if reset.expires_at <= utcnow():
        raise InvitationUnusable("This reset link has expired. Ask for a new one.", field="token",
                                 code="reset_expired")
    check_password_rules(new_password)
    user = session.get(User, reset.user_id)
    user.password_hash = hash_password(new_password)
    reset.used_at = utcnow()
    session.execute(AuthSession.__table__.delete().where(AuthSession.user_id == user.id))
    audit(session, user.id, "password.reset", "user", user.id, ip=ip)
    publish(session, "password.reset", Audience(user_id=user.id), actor_id=user.id, object_type="user",
            object_id=user.id)
    return user
