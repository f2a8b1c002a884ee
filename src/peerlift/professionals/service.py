"""Every write of verified professionals: applying, and an admin's verifying, rejecting or revoking.

A person has at most one open application (applied or verified) at a time; after a rejection or a
revocation they may apply again. The badge is never copied anywhere: every page asks for the current
status (``verified_labels``), so a revocation takes the badge away everywhere at once.
"""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from peerlift.db import utcnow
from peerlift.errors import Conflict, Forbidden, InvalidInput, NotFound
from peerlift.events import Audience, publish
from peerlift.identity import service as identity
from peerlift.identity.models import Role, User
from peerlift.notify.models import Kind
from peerlift.notify.service import notify
from peerlift.professionals.models import OPEN, Professional, Status, label_of, professions

MAX_REGISTRATION = 64
MAX_REGISTRY = 120
MAX_OTHER = 80
MAX_REASON = 1000


class AlreadyApplied(Conflict):
    code = "already_applied"


class AlreadyDecided(Conflict):
    code = "already_decided"


# --- reads used everywhere a person is shown ------------------------------------------------------

_VERIFIED = Professional.status == Status.verified.value


def verified_labels(session: Session, user_ids) -> dict[int, str]:
    """The profession label of each of ``user_ids`` who is a verified professional now."""
    ids = set(user_ids)
    if not ids:
        return {}
    rows = session.execute(select(Professional.user_id, Professional.profession, Professional.profession_other)
                           .where(Professional.user_id.in_(ids), _VERIFIED))
    return {user_id: label_of(profession, other) for user_id, profession, other in rows}


def people_with_labels(session: Session, user_ids) -> dict[int, tuple[User, str | None]]:
    """Each of ``user_ids`` with the label ``verified_labels`` gives them (None when not verified now),
    in one statement."""
    ids = set(user_ids)
    if not ids:
        return {}
    rows = session.execute(select(User, Professional.profession, Professional.profession_other)
                           .outerjoin(Professional, and_(Professional.user_id == User.id, _VERIFIED))
                           .where(User.id.in_(ids)))
    return {user.id: (user, label_of(profession, other) if profession else None) for user, profession, other in rows}


def verified(session: Session, user_id: int) -> Professional | None:
    return session.scalar(select(Professional).where(Professional.user_id == user_id,
                                                     Professional.status == Status.verified.value))


def applications_of(session: Session, user_id: int) -> list[Professional]:
    """A person's applications, newest first."""
    return list(session.scalars(select(Professional).where(Professional.user_id == user_id)
                                .order_by(Professional.id.desc())))


def current(session: Session, user_id: int) -> Professional | None:
    """The newest application: what the person's profile shows."""
    return session.scalar(select(Professional).where(Professional.user_id == user_id)
                          .order_by(Professional.id.desc()).limit(1))


def listing(session: Session, admin: User, status: str | None = None) -> list[tuple[Professional, User]]:
    require_admin(admin)
    if status is not None and status not in {s.value for s in Status}:
        raise InvalidInput(f"The status is one of: {', '.join(s.value for s in Status)}.", field="status")
    query = select(Professional, User).join(User, User.id == Professional.user_id)
    if status is not None:
        query = query.where(Professional.status == status)
    return [(p, u) for p, u in session.execute(query.order_by(Professional.status != Status.applied.value,
                                                              Professional.id.desc()).limit(500))]


# --- applying --------------------------------------------------------------------------------------

def _text(value, field: str, what: str, limit: int, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"The {what} must be text.", field=field)
    value = " ".join(value.split())
    if required and not value:
        raise InvalidInput(f"The {what} is empty: fill it in.", field=field)
    if len(value) > limit:
        raise InvalidInput(f"The {what} has {len(value):,} characters; the most is {limit}.", field=field)
    return value


def apply(session: Session, user: User, *, profession: str, registration_number: str, registry: str = "",
          profession_other: str = "") -> Professional:
    """Apply to be shown as a verified professional. Nothing is written if anything is wrong."""
    if profession not in professions():
        raise InvalidInput(f"Unknown profession {profession!r}; choose one of: {', '.join(professions())}.",
                           field="profession")
    other = _text(profession_other, "profession_other", "profession", MAX_OTHER, required=profession == "other")
    number = _text(registration_number, "registration_number", "registration number", MAX_REGISTRATION,
                   required=True)
    register = _text(registry, "registry", "register and country", MAX_REGISTRY, required=False)
    open_one = session.scalar(select(Professional).where(Professional.user_id == user.id,
                                                         Professional.status.in_(OPEN)))
    if open_one is not None:
        raise AlreadyApplied("You are already verified as a professional." if open_one.status == Status.verified.value
                             else "Your application is waiting for an admin; you can apply again once it is "
                                  "decided.", field="profession")
    application = Professional(user_id=user.id, profession=profession,
                               profession_other=other if profession == "other" else "",
                               registration_number=number, registry_name=register, status=Status.applied.value,
                               applied_at=utcnow(), reason="")
    session.add(application)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise AlreadyApplied("Your application is waiting for an admin.", field="profession") from None
    identity.audit(session, user.id, "professional.applied", "professional", application.id,
                   detail=application.profession)
    publish(session, "professional.applied", Audience(user_id=user.id), actor_id=user.id,
            object_type="professional", object_id=application.id,
            data={"application_id": application.id, "status": application.status})
    return application


# --- an admin's decisions ----------------------------------------------------------------------------

def require_admin(user: User) -> None:
    if user.role != Role.admin:
        raise Forbidden("Only admins verify professionals.")


def get_application(session: Session, admin: User, application_id: int) -> Professional:
    require_admin(admin)
    application = session.get(Professional, application_id)
    if application is None:
        raise NotFound("No application with that id.", field="application_id")
    return application


def _decide(session: Session, admin: User, application: Professional, *, expected: str, status: Status,
            reason: str, verb: str) -> Professional:
    require_admin(admin)
    reason = _text(reason, "reason", "reason", MAX_REASON, required=status != Status.verified)
    if application.status != expected:
        raise AlreadyDecided(f"This application is {application.status}; only an application that is {expected} "
                             f"can be {verb}.", field="application_id")
    application.status, application.decided_by_id, application.decided_at = status.value, admin.id, utcnow()
    application.reason = reason
    session.flush()
    identity.audit(session, admin.id, f"professional.{status.value}", "professional", application.id,
                   detail=f"user {application.user_id}")
    sentence = {
        Status.verified: f"You are now shown as a verified {application.label}.",
        Status.rejected: f"Your application as a {application.label} was not accepted: {reason}",
        Status.revoked: f"Your verification as a {application.label} was withdrawn: {reason}",
    }[status]
    notify(session, user_id=application.user_id, kind=Kind.professional_decision, actor_id=None,
           text=sentence, link="/profile/professional")
    publish(session, f"professional.{status.value}", Audience(user_id=application.user_id), actor_id=admin.id,
            object_type="professional", object_id=application.id,
            data={"application_id": application.id, "status": application.status,
                  "user_id": application.user_id})
    return application


def verify(session: Session, admin: User, application: Professional) -> Professional:
    return _decide(session, admin, application, expected=Status.applied.value, status=Status.verified, reason="",
                   verb="verified")


def reject(session: Session, admin: User, application: Professional, reason: str) -> Professional:
    return _decide(session, admin, application, expected=Status.applied.value, status=Status.rejected,
                   reason=reason, verb="rejected")


def revoke(session: Session, admin: User, application: Professional, reason: str) -> Professional:
    return _decide(session, admin, application, expected=Status.verified.value, status=Status.revoked,
                   reason=reason, verb="revoked")
