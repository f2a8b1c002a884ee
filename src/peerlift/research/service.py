"""Every write of the research domain: studies, arms, team, design, consent documents,
invitation links, and each person's way through a study (screening, consent, randomisation,
withdrawal).

Each function validates first, then writes, audits, publishes its event and only flushes: the
caller's unit of work commits, and bad input leaves nothing half-written.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from peerlift.community import service as community
from peerlift.community.models import CircleRole, Comment, CommentRevision, Membership, Post, PostRevision, Space
from peerlift.db import utcnow
from peerlift.errors import Conflict, Forbidden, InvalidInput, NotFound
from peerlift.events import Audience, publish
from peerlift.identity import service as identity
from peerlift.identity.models import Role, User
from peerlift.policy import CAN_CREATE_STUDY_ROLES, require_role, require_study_researcher
from peerlift.research import randomise as sequences
from peerlift.research.models import (
    Allocation,
    Arm,
    Consent,
    ConsentDocument,
    Enrolment,
    EnrolmentStatus,
    Randomisation,
    Study,
    StudyDesign,
    StudyInvitation,
    StudyMember,
    StudyRole,
)


class AlreadyEnrolled(Conflict):
    code = "already_enrolled"


class WrongStep(Conflict):
    code = "wrong_step"


SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
WITHDRAWAL_RULES = {
    "keep": "What you have written and logged so far stays in the study's data; nothing new is collected.",
    "delete": "Your posts and comments in the study's circles are deleted; nothing new is collected.",
}
DELETION_RULES = {
    "keep_pseudonymised": "What you wrote, logged and answered for the study stays in its data under "
                          "\u201cDeleted member\u201d, without your name or email address.",
    "delete": "What you wrote in the study's circles, your logs and questionnaire answers are deleted; the "
              "study keeps only that someone took part (for its counts), not who.",
}
QUESTION_KINDS = ("yes_no", "number", "choice")
MEMBER_ROLES = (CircleRole.member, CircleRole.peer_supporter)


def _text(value: Any, field: str, what: str, limit: int, *, required: bool = True) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"The {what} must be text.", field=field)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"The {what} is missing.", field=field)
    if len(value) > limit:
        raise InvalidInput(f"The {what} may have at most {limit:,} characters.", field=field)
    return value


def _audit_publish(session: Session, actor_id: int | None, kind: str, study_id: int, object_type: str,
                   object_id: int | None, audience: Audience | None = None, detail: str = "",
                   data: dict | None = None) -> None:
    identity.audit(session, actor_id, kind, object_type, object_id, detail=detail)
    publish(session, kind, audience or Audience(), actor_id=actor_id, object_type=object_type,
            object_id=object_id, data={"study_id": study_id, **(data or {})})


# --- studies -------------------------------------------------------------------------------------

def create_study(session: Session, actor: User, *, title: str, slug: str, registry_id: str = "",
                 ethics_ref: str = "", description: str = "", target_size: int = 0,
                 researchers: list[User] | None = None) -> Study:
    """A new study with its design row (and a fresh concealed seed). A researcher who creates a
    study is on its team; an admin names the researchers who will run it."""
    require_role(actor, CAN_CREATE_STUDY_ROLES, "create studies")
    title = " ".join(_text(title, "title", "title", 200).split())
    slug = _text(slug, "slug", "short name", 64).lower()
    if not SLUG_RE.match(slug):
        raise InvalidInput("The short name takes lower-case letters, digits and hyphens.", field="slug")
    registry_id = _text(registry_id, "registry_id", "registry id", 64, required=False)
    ethics_ref = _text(ethics_ref, "ethics_ref", "ethics approval reference", 120, required=False)
    description = _text(description, "description", "description", 5_000, required=False)
    if not isinstance(target_size, int) or isinstance(target_size, bool) or not 0 <= target_size <= 1_000_000:
        raise InvalidInput("The target size is a whole number from 0 to 1,000,000.", field="target_size")
    team = list(researchers or [])
    if actor.role == Role.researcher and actor not in team:
        team.insert(0, actor)
    if not team:
        raise InvalidInput("Name at least one researcher who runs the study.", field="researchers")
    for person in team:
        if person.role != Role.researcher:
            raise InvalidInput(f"{person.display_name} has no researcher account.", field="researchers")
    if session.scalar(select(Study.id).where(Study.slug == slug)) is not None:
        raise Conflict(f"A study with the short name {slug!r} exists already.", field="slug")
    study = Study(slug=slug, title=title, registry_id=registry_id, ethics_ref=ethics_ref,
                  description=description, target_size=target_size)
    session.add(study)
    session.flush()
    session.add(StudyDesign(study_id=study.id, scheme=Randomisation.blocks, factors=[], block_sizes=[],
                            concealed_seed=sequences.new_seed(), eligibility=[], withdrawal_rule="keep"))
    for person in team:
        session.add(StudyMember(study_id=study.id, user_id=person.id, role=StudyRole.researcher))
    session.flush()
    _audit_publish(session, actor.id, "study.created", study.id, "study", study.id, detail=slug)
    return study


def design_of(session: Session, study: Study) -> StudyDesign:
    return session.get(StudyDesign, study.id)


def add_arm(session: Session, actor: User, study: Study, *, slug: str, name: str, description: str = "") -> Arm:
    require_study_researcher(session, actor, study)
    slug = _text(slug, "slug", "arm's short name", 64).lower()
    if not SLUG_RE.match(slug):
        raise InvalidInput("An arm's short name takes lower-case letters, digits and hyphens.", field="slug")
    name = " ".join(_text(name, "name", "arm's name", 120).split())
    description = _text(description, "description", "description", 2_000, required=False)
    if session.scalar(select(Arm.id).where(Arm.study_id == study.id, Arm.slug == slug)) is not None:
        raise Conflict(f"The study has an arm {slug!r} already.", field="slug")
    if _has_allocations(session, study):
        raise Conflict("Allocation has begun: the arms can no longer change.", field="slug")
    arm = Arm(study_id=study.id, slug=slug, name=name, description=description)
    session.add(arm)
    session.flush()
    _audit_publish(session, actor.id, "study.arm_added", study.id, "arm", arm.id, detail=slug)
    return arm


def arm_of(session: Session, study: Study, arm_id: Any) -> Arm:
    arm = session.get(Arm, arm_id) if isinstance(arm_id, int) and not isinstance(arm_id, bool) else None
    if arm is None or arm.study_id != study.id:
        raise InvalidInput("This study has no arm with that id.", field="arm_id")
    return arm


def set_arm_protocol(session: Session, actor: User, study: Study, arm_id: Any, protocol_version_id: Any,
                     start_date: dt.date):
    """Run a protocol version in every circle of an arm (see protocols.service.assign_arm)."""
    from peerlift.protocols import service as protocols
    from peerlift.protocols.models import ProtocolVersion

    require_study_researcher(session, actor, study)
    arm = arm_of(session, study, arm_id)
    version = session.get(ProtocolVersion, protocol_version_id) if isinstance(protocol_version_id, int) else None
    if version is None:
        raise InvalidInput("No protocol version with that id.", field="protocol_version_id")
    assignments = protocols.assign_arm(session, actor, arm, version, start_date)
    _audit_publish(session, actor.id, "study.arm_protocol", study.id, "arm", arm.id,
                   detail=f"protocol version {version.id}", data={"protocol_version_id": version.id})
    return assignments


def add_team_member(session: Session, actor: User, study: Study, user: User | None, role: Any) -> StudyMember:
    require_study_researcher(session, actor, study)
    try:
        role = StudyRole(role)
    except ValueError:
        raise InvalidInput("A team role is researcher, facilitator or clinician.", field="role")
    if user is None:
        raise InvalidInput("No account with that id or email address.", field="user_id")
    needed = {StudyRole.researcher: Role.researcher, StudyRole.facilitator: Role.facilitator,
              StudyRole.clinician: Role.clinician}[role]
    if user.role != needed and not (role == StudyRole.facilitator and user.role == Role.admin):
        raise InvalidInput(f"{user.display_name} has no {role.value} account.", field="role")
    if session.scalar(select(StudyMember.id).where(StudyMember.study_id == study.id,
                                                   StudyMember.user_id == user.id)) is not None:
        raise Conflict(f"{user.display_name} is on the team already.", field="user_id")
    member = StudyMember(study_id=study.id, user_id=user.id, role=role)
    session.add(member)
    session.flush()
    _audit_publish(session, actor.id, "study.team_added", study.id, "study_member", member.id,
                   detail=f"user {user.id} as {role.value}")
    return member


# --- design: randomisation, eligibility, withdrawal ------------------------------------------------

def check_eligibility(questions: Any) -> list[dict]:
    """Screening questions as data. Each has a ``key``, a ``text``, a ``kind`` and its rule:
    yes_no: ``include_if`` "yes" or "no"; number: ``min`` and/or ``max`` (inclusive) to be
    included; choice: ``options`` and an optional ``exclude`` list. ``reason`` says why a person
    is not included."""
    if not isinstance(questions, list):
        raise InvalidInput("The screening questions are a list.", field="eligibility")
    out, keys = [], set()
    for n, q in enumerate(questions):
        field = f"eligibility[{n}]"
        if not isinstance(q, dict):
            raise InvalidInput("Each screening question is an object.", field=field)
        key = q.get("key")
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise InvalidInput("A question's key is a short lower-case name (letters, digits, _).",
                               field=f"{field}.key")
        if key in keys:
            raise InvalidInput(f"Two questions have the key {key!r}.", field=f"{field}.key")
        keys.add(key)
        text = _text(q.get("text"), f"{field}.text", "question", 500)
        kind = q.get("kind")
        if kind not in QUESTION_KINDS:
            raise InvalidInput(f"A question's kind is one of: {', '.join(QUESTION_KINDS)}.", field=f"{field}.kind")
        reason = _text(q.get("reason"), f"{field}.reason", "reason", 500, required=False)
        clean: dict[str, Any] = {"key": key, "text": text, "kind": kind, "reason": reason}
        if kind == "yes_no":
            if q.get("include_if") not in ("yes", "no"):
                raise InvalidInput("A yes/no question includes people who answer \"yes\" or \"no\".",
                                   field=f"{field}.include_if")
            clean["include_if"] = q["include_if"]
        elif kind == "number":
            low, high = q.get("min"), q.get("max")
            for name, value in (("min", low), ("max", high)):
                if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                    raise InvalidInput(f"The {name} of a number question is a number.", field=f"{field}.{name}")
            if low is None and high is None:
                raise InvalidInput("A number question needs a min, a max or both.", field=f"{field}.min")
            if low is not None and high is not None and low > high:
                raise InvalidInput("The min is above the max.", field=f"{field}.min")
            clean.update({"min": low, "max": high})
        else:
            options = q.get("options")
            if not isinstance(options, list) or len(options) < 2 or not all(
                    isinstance(o, str) and o.strip() for o in options) or len(set(options)) != len(options):
                raise InvalidInput("A choice question needs two or more different options.",
                                   field=f"{field}.options")
            exclude = q.get("exclude") or []
            if not isinstance(exclude, list) or any(o not in options for o in exclude):
                raise InvalidInput("Every excluded answer must be one of the options.", field=f"{field}.exclude")
            clean.update({"options": list(options), "exclude": list(exclude)})
        out.append(clean)
    return out


def _has_allocations(session: Session, study: Study) -> bool:
    return session.scalar(select(Allocation.id).where(Allocation.study_id == study.id).limit(1)) is not None


def set_design(session: Session, actor: User, study: Study, *, scheme: Any, block_sizes: Any = None,
               factors: Any = None, eligibility: Any = None, withdrawal_rule: Any = "keep") -> StudyDesign:
    require_study_researcher(session, actor, study)
    design = design_of(session, study)
    try:
        scheme = Randomisation(scheme)
    except ValueError:
        raise InvalidInput("The scheme is simple, blocks, stratified or cluster.", field="scheme")
    questions = check_eligibility(eligibility if eligibility is not None else [])
    arms = session.scalar(select(func.count(Arm.id)).where(Arm.study_id == study.id))
    if arms < 2:
        raise InvalidInput("A randomised study needs at least two arms; add them first.", field="scheme")
    sizes = block_sizes if block_sizes is not None else []
    if not isinstance(sizes, list) or any(isinstance(s, bool) or not isinstance(s, int) for s in sizes):
        raise InvalidInput("Block sizes are a list of whole numbers.", field="block_sizes")
    if scheme != Randomisation.simple:
        if not sizes:
            raise InvalidInput(f"Give block sizes, multiples of the number of arms ({arms}).", field="block_sizes")
        wrong = [s for s in sizes if s <= 0 or s % arms or s > 100]
        if wrong:
            raise InvalidInput(f"Block size {wrong[0]} is not a multiple of the number of arms ({arms}) "
                               "up to 100.", field="block_sizes")
    else:
        sizes = []
    clean_factors: list[dict] = []
    if scheme == Randomisation.stratified:
        if not isinstance(factors, list) or not factors:
            raise InvalidInput("A stratified design names its factors: choice questions of the screening.",
                               field="factors")
        by_key = {q["key"]: q for q in questions}
        for n, f in enumerate(factors):
            key = f.get("key") if isinstance(f, dict) else f
            question = by_key.get(key) if isinstance(key, str) else None
            if question is None or question["kind"] != "choice":
                raise InvalidInput(f"Factor {key!r} is not a choice question of the screening.",
                                   field=f"factors[{n}]")
            values = f.get("values") if isinstance(f, dict) and f.get("values") is not None else None
            allowed = [o for o in question["options"] if o not in question["exclude"]]
            if values is not None and sorted(values) != sorted(allowed):
                raise InvalidInput(f"Factor {key!r} takes the values its question includes: {', '.join(allowed)}.",
                                   field=f"factors[{n}].values")
            clean_factors.append({"key": key, "values": allowed})
        if len({f["key"] for f in clean_factors}) != len(clean_factors):
            raise InvalidInput("A factor is named twice.", field="factors")
    elif factors:
        raise InvalidInput("Only a stratified design has factors.", field="factors")
    if withdrawal_rule not in WITHDRAWAL_RULES:
        raise InvalidInput("The withdrawal rule is \"keep\" (data collected so far) or \"delete\" "
                           "(their writing).", field="withdrawal_rule")
    changes_sequence = (scheme, sizes, clean_factors) != (design.scheme, design.block_sizes, design.factors)
    if changes_sequence and _has_allocations(session, study):
        raise Conflict("Allocation has begun: the scheme, blocks and factors can no longer change.", field="scheme")
    design.scheme, design.block_sizes, design.factors = scheme, sizes, clean_factors
    design.eligibility, design.withdrawal_rule = questions, withdrawal_rule
    session.flush()
    _audit_publish(session, actor.id, "study.design_set", study.id, "study", study.id,
                   detail=f"{scheme.value} blocks={sizes} factors={[f['key'] for f in clean_factors]}")
    return design


def deletion_rule(document: ConsentDocument | None) -> str:
    """What deleting one's account does to a study's data, as a consent document states it (the
    installation's PEERLIFT_DELETION_IN_STUDY when it states none)."""
    from peerlift.settings import get_settings

    rule = document.on_account_deletion if document is not None else ""
    return rule if rule in DELETION_RULES else get_settings().deletion_in_study


def deletion_rule_text(rule: str) -> str:
    return DELETION_RULES.get(rule, DELETION_RULES["keep_pseudonymised"])


def add_consent_document(session: Session, actor: User, study: Study, *, version: Any, title: Any,
                         sections: Any, on_account_deletion: Any = None) -> ConsentDocument:
    """A new version of the consent document; it becomes the one people sign from now on. It states
    what deleting one's account does to the study's data (the installation's default if not given)."""
    require_study_researcher(session, actor, study)
    if on_account_deletion in (None, ""):
        from peerlift.settings import get_settings

        on_account_deletion = get_settings().deletion_in_study
    if on_account_deletion not in DELETION_RULES:
        raise InvalidInput("On account deletion the study's data is \"keep_pseudonymised\" or \"delete\".",
                           field="on_account_deletion")
    version = _text(version, "version", "version", 32)
    title = _text(title, "title", "title", 200)
    if not isinstance(sections, list) or not sections:
        raise InvalidInput("A consent document has at least one section.", field="sections")
    clean, keys = [], set()
    for n, section in enumerate(sections):
        if not isinstance(section, dict):
            raise InvalidInput("Each section is an object with a key, a heading and a text.", field=f"sections[{n}]")
        key = section.get("key")
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise InvalidInput("A section's key is a short lower-case name (letters, digits, _).",
                               field=f"sections[{n}].key")
        if key in keys:
            raise InvalidInput(f"Two sections have the key {key!r}.", field=f"sections[{n}].key")
        keys.add(key)
        clean.append({"key": key, "heading": _text(section.get("heading"), f"sections[{n}].heading", "heading", 200),
                      "text": _text(section.get("text"), f"sections[{n}].text", "section text", 20_000)})
    if session.scalar(select(ConsentDocument.id).where(ConsentDocument.study_id == study.id,
                                                       ConsentDocument.version == version)) is not None:
        raise Conflict(f"Version {version} of the consent document exists already; "
                       "a changed document is a new version.", field="version")
    document = ConsentDocument(study_id=study.id, version=version, title=title, sections=clean,
                               on_account_deletion=on_account_deletion)
    session.add(document)
    design_of(session, study).consent_version = version
    session.flush()
    _audit_publish(session, actor.id, "study.consent_document_added", study.id, "consent_document", document.id,
                   detail=f"{version}; on account deletion: {on_account_deletion}")
    return document


def current_consent_document(session: Session, study: Study) -> ConsentDocument | None:
    design = design_of(session, study)
    return session.scalar(select(ConsentDocument).where(
        ConsentDocument.study_id == study.id, ConsentDocument.version == design.consent_version))


# --- invitation links ------------------------------------------------------------------------------

def create_invitation(session: Session, actor: User, study: Study, *, days_valid: int = 30,
                      max_uses: int = 100, note: str = "") -> tuple[str, StudyInvitation]:
    require_study_researcher(session, actor, study)
    if not isinstance(days_valid, int) or not 1 <= days_valid <= 365:
        raise InvalidInput("An invitation is valid for 1 to 365 days.", field="days_valid")
    if not isinstance(max_uses, int) or not 1 <= max_uses <= 10_000:
        raise InvalidInput("An invitation allows 1 to 10,000 people.", field="max_uses")
    token = secrets.token_urlsafe(24)
    invitation = StudyInvitation(token_hash=identity.token_hash(token), study_id=study.id, created_by_id=actor.id,
                                 expires_at=utcnow() + dt.timedelta(days=days_valid), max_uses=max_uses,
                                 note=_text(note, "note", "note", 200, required=False))
    session.add(invitation)
    session.flush()
    _audit_publish(session, actor.id, "study.invitation_created", study.id, "study_invitation", invitation.id)
    return token, invitation


def find_invitation(session: Session, token: str, *, for_update: bool = False) -> StudyInvitation:
    query = select(StudyInvitation).where(StudyInvitation.token_hash == identity.token_hash(token or ""))
    if for_update:
        query = query.with_for_update()
    invitation = session.scalar(query)
    if invitation is None or invitation.revoked_at is not None:
        raise NotFound("This study invitation link is not valid.", field="token", code="invitation_not_found")
    if invitation.expires_at <= utcnow():
        raise identity.InvitationUnusable("This study invitation has expired. Ask the study team for a new link.",
                                          field="token")
    if invitation.uses >= invitation.max_uses:
        raise identity.InvitationUnusable("This study invitation is full. Ask the study team for a new link.",
                                          field="token")
    return invitation


# --- enrolment ---------------------------------------------------------------------------------------

def start_enrolment(session: Session, user: User, token: str, ip: str = "") -> Enrolment:
    """The person of an invitation link begins: an enrolment, status ``invited``."""
    invitation = find_invitation(session, token, for_update=True)
    if user.role != Role.participant:
        raise Forbidden("Only participant accounts take part in a study.", field="token")
    if session.scalar(select(Enrolment.id).where(Enrolment.study_id == invitation.study_id,
                                                 Enrolment.user_id == user.id)) is not None:
        raise AlreadyEnrolled("You have enrolled in this study already.", field="token")
    claimed = session.execute(
        update(StudyInvitation).where(StudyInvitation.id == invitation.id,
                                      StudyInvitation.uses < StudyInvitation.max_uses)
        .values(uses=StudyInvitation.uses + 1).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise identity.InvitationUnusable("This study invitation is full. Ask the study team for a new link.",
                                          field="token")
    enrolment = Enrolment(study_id=invitation.study_id, user_id=user.id, status=EnrolmentStatus.invited,
                          screening_answers={}, strata={})
    session.add(enrolment)
    session.flush()
    identity.audit(session, user.id, "enrolment.started", "enrolment", enrolment.id, ip=ip,
                   detail=f"study {invitation.study_id} invitation {invitation.id}")
    publish(session, "enrolment.started", Audience(user_id=user.id), actor_id=user.id, object_type="enrolment",
            object_id=enrolment.id, data={"study_id": invitation.study_id})
    return enrolment


def sign_up_for_study(session: Session, *, token: str, email: str, password: str, display_name: str,
                      timezone: str, pronouns: str = "", ip: str = "") -> tuple[User, Enrolment]:
    find_invitation(session, token)
    user = identity.create_user(session, email=email, password=password, display_name=display_name,
                                timezone=timezone, pronouns=pronouns)
    return user, start_enrolment(session, user, token, ip=ip)


def _require_status(enrolment: Enrolment, *allowed: EnrolmentStatus, message: str) -> None:
    if enrolment.status not in allowed:
        raise WrongStep(message, field="enrolment_id")


def _answer(question: dict, raw: Any) -> Any:
    field = f"answers.{question['key']}"
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InvalidInput(f"Answer the question: {question['text']}", field=field)
    if question["kind"] == "yes_no":
        value = raw.strip().lower() if isinstance(raw, str) else ({True: "yes", False: "no"}.get(raw))
        if value not in ("yes", "no"):
            raise InvalidInput(f"Answer yes or no: {question['text']}", field=field)
        return value
    if question["kind"] == "number":
        try:
            value = float(raw) if not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            value = None
        if value is None or value != value or value in (float("inf"), float("-inf")):
            raise InvalidInput(f"Answer with a number: {question['text']}", field=field)
        return int(value) if value.is_integer() else value
    if raw not in question["options"]:
        raise InvalidInput(f"Choose one of: {', '.join(question['options'])}.", field=field)
    return raw


def _excluded_by(question: dict, value: Any) -> bool:
    if question["kind"] == "yes_no":
        return value != question["include_if"]
    if question["kind"] == "number":
        low, high = question.get("min"), question.get("max")
        return (low is not None and value < low) or (high is not None and value > high)
    return value in question.get("exclude", [])


def screen(session: Session, user: User, enrolment: Enrolment, answers: Any) -> Enrolment:
    """Record the screening answers; a person outside a rule is ineligible, with the reason."""
    if enrolment.user_id != user.id:
        raise NotFound("No enrolment with that id.", field="enrolment_id")
    _require_status(enrolment, EnrolmentStatus.invited, message="The screening has been answered already.")
    if not isinstance(answers, dict):
        raise InvalidInput("The answers are a mapping of question key to answer.", field="answers")
    study = session.get(Study, enrolment.study_id)
    design = design_of(session, study)
    known = {q["key"] for q in design.eligibility}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise InvalidInput(f"There is no question {unknown[0]!r}.", field=f"answers.{unknown[0]}")
    clean = {q["key"]: _answer(q, answers.get(q["key"])) for q in design.eligibility}
    reasons = [q["reason"] or f"The answer to \u201c{q['text']}\u201d is outside the study's criteria."
               for q in design.eligibility if _excluded_by(q, clean[q["key"]])]
    enrolment.screening_answers = clean
    enrolment.screened_at = utcnow()
    enrolment.strata = {f["key"]: clean[f["key"]] for f in design.factors}
    if reasons:
        enrolment.status, enrolment.exclusion_reason = EnrolmentStatus.ineligible, " ".join(reasons)
    else:
        enrolment.status = EnrolmentStatus.eligible
    session.flush()
    identity.audit(session, user.id, "enrolment.screened", "enrolment", enrolment.id, detail=enrolment.status.value)
    publish(session, "enrolment.screened", Audience(user_id=user.id), actor_id=user.id, object_type="enrolment",
            object_id=enrolment.id, data={"study_id": study.id, "eligible": not reasons})
    return enrolment


def normalised_name(name: str) -> str:
    return " ".join((name or "").split()).casefold()


def consent(session: Session, user: User, enrolment: Enrolment, *, sections: Any, typed_name: Any,
            document_version: Any = None, ip: str = "") -> Consent:
    """Sign the study's current consent document: every section confirmed, the full name typed."""
    if enrolment.user_id != user.id:
        raise NotFound("No enrolment with that id.", field="enrolment_id")
    _require_status(enrolment, EnrolmentStatus.eligible,
                    message="Consent comes after the screening, once, and not after declining.")
    study = session.get(Study, enrolment.study_id)
    document = current_consent_document(session, study)
    if document is None:
        raise Conflict("This study has no consent document yet.", field="document_version")
    if document_version not in (None, document.version):
        raise Conflict(f"The consent document changed to version {document.version}; read it again.",
                       field="document_version")
    if not isinstance(sections, list) or not all(isinstance(s, str) for s in sections):
        raise InvalidInput("The confirmed sections are a list of section keys.", field="sections")
    keys = [s["key"] for s in document.sections]
    unknown = [s for s in sections if s not in keys]
    if unknown:
        raise InvalidInput(f"The consent document has no section {unknown[0]!r}.", field="sections")
    missing = [s["heading"] for s in document.sections if s["key"] not in sections]
    if missing:
        raise InvalidInput(f"Confirm every section to consent; not yet confirmed: {', '.join(missing)}.",
                           field="sections")
    if not isinstance(typed_name, str) or not typed_name.strip():
        raise InvalidInput("Type your full name to sign.", field="typed_name")
    if normalised_name(typed_name) != normalised_name(user.display_name):
        raise InvalidInput(f"The name you typed is not the name of your account ({user.display_name}).",
                           field="typed_name")
    signed = Consent(enrolment_id=enrolment.id, document_id=document.id, document_version=document.version,
                     sections_confirmed=keys, typed_name=" ".join(typed_name.split()), ip=ip[:64])
    session.add(signed)
    enrolment.status, enrolment.consented_at = EnrolmentStatus.consented, utcnow()
    session.flush()
    identity.audit(session, user.id, "enrolment.consented", "enrolment", enrolment.id, ip=ip,
                   detail=f"consent document {document.version}")
    publish(session, "enrolment.consented", Audience(user_id=user.id), actor_id=user.id, object_type="enrolment",
            object_id=enrolment.id, data={"study_id": study.id, "document_version": document.version})
    return signed


def decline(session: Session, user: User, enrolment: Enrolment, reason: Any = "") -> Enrolment:
    if enrolment.user_id != user.id:
        raise NotFound("No enrolment with that id.", field="enrolment_id")
    _require_status(enrolment, EnrolmentStatus.eligible, message="Only an eligible person who has not "
                    "consented can decline.")
    reason = _text(reason, "reason", "reason", 1_000, required=False)
    enrolment.status, enrolment.exclusion_reason = EnrolmentStatus.declined, reason or "Declined consent."
    session.flush()
    identity.audit(session, user.id, "enrolment.declined", "enrolment", enrolment.id)
    publish(session, "enrolment.declined", Audience(user_id=user.id), actor_id=user.id, object_type="enrolment",
            object_id=enrolment.id, data={"study_id": enrolment.study_id})
    return enrolment


def _open_circles(session: Session, arm_ids: list[int]) -> list[tuple[Space, int]]:
    """Non-archived circles of these arms with their number of members, least full first."""
    count = (select(func.count(Membership.id)).where(Membership.space_id == Space.id,
                                                     Membership.role.in_(MEMBER_ROLES))
             .correlate(Space).scalar_subquery())
    rows = session.execute(select(Space, count).where(Space.arm_id.in_(arm_ids), Space.archived_at.is_(None))
                           .order_by(count, Space.id)).all()
    return [(space, n) for space, n in rows]


def randomise(session: Session, actor: User, enrolment: Enrolment) -> Enrolment:
    """Allocate a consented person from the concealed sequence and place them in the least full
    open circle of their arm. In a cluster design the circles were allocated: the person joins
    the least full allocated circle and takes its arm."""
    study = session.get(Study, enrolment.study_id)
    if actor.id != enrolment.user_id:
        require_study_researcher(session, actor, study)
    _require_status(enrolment, EnrolmentStatus.consented,
                    message="Only a person who has consented can be randomised.")
    design = design_of(session, study)
    arm_ids = list(session.scalars(select(Arm.id).where(Arm.study_id == study.id).order_by(Arm.id)))
    person = session.get(User, enrolment.user_id)
    circles = _open_circles(session, arm_ids)
    if design.scheme == Randomisation.cluster:
        if not circles:
            raise Conflict("No circle of this study has been allocated yet.", field="enrolment_id")
        space = circles[0][0]
        arm_id = space.arm_id
    else:
        without = sorted(set(arm_ids) - {space.arm_id for space, _n in circles})
        if len(arm_ids) < 2 or without:
            raise Conflict("Every arm needs an open circle before randomisation.", field="enrolment_id")
        stratum = sequences.stratum_of(design, enrolment.strata or {})
        allocation = sequences.allocate(session, design, stratum, enrolment_id=enrolment.id, actor_id=actor.id)
        arm_id = allocation.arm_id
        space = next(space for space, _n in circles if space.arm_id == arm_id)
        identity.audit(session, actor.id, "allocation.made", "allocation", allocation.id,
                       detail=f"enrolment {enrolment.id} stratum {stratum!r} index {allocation.sequence_index} "
                              f"arm {arm_id}")
    community.add_member(session, actor, space, person, CircleRole.member)
    enrolment.status, enrolment.randomised_at = EnrolmentStatus.randomised, utcnow()
    enrolment.arm_id, enrolment.space_id = arm_id, space.id
    session.flush()
    _plan_new_member(session, space, person)
    identity.audit(session, actor.id, "enrolment.randomised", "enrolment", enrolment.id,
                   detail=f"arm {arm_id} circle {space.id}")
    publish(session, "enrolment.randomised", Audience(user_id=person.id), actor_id=actor.id,
            object_type="enrolment", object_id=enrolment.id,
            data={"study_id": study.id, "arm_id": arm_id, "circle_id": space.id})
    return enrolment


def _plan_new_member(session: Session, space: Space, person: User) -> None:
    from peerlift.protocols import service as protocols
    from peerlift.protocols.models import Assignment, AssignmentStatus

    for assignment in session.scalars(select(Assignment).where(Assignment.space_id == space.id,
                                                               Assignment.status == AssignmentStatus.active)):
        protocols.plan(session, assignment, user_ids=[person.id])


def allocate_circles(session: Session, actor: User, study: Study, circle_ids: Any) -> list[Allocation]:
    """Cluster randomisation: whole circles (not yet in an arm) are allocated to the arms."""
    require_study_researcher(session, actor, study)
    design = design_of(session, study)
    if design.scheme != Randomisation.cluster:
        raise InvalidInput("Circles are allocated only in a cluster design.", field="circle_ids")
    if not isinstance(circle_ids, list) or not circle_ids or not all(
            isinstance(c, int) and not isinstance(c, bool) for c in circle_ids):
        raise InvalidInput("Give the ids of the circles to allocate.", field="circle_ids")
    if len(set(circle_ids)) != len(circle_ids):
        raise InvalidInput("A circle is named twice.", field="circle_ids")
    spaces = []
    for circle_id in circle_ids:
        space = session.get(Space, circle_id)
        if space is None or space.archived_at is not None:
            raise InvalidInput(f"No open circle {circle_id}.", field="circle_ids")
        if space.arm_id is not None:
            raise Conflict(f"Circle {circle_id} is in an arm already.", field="circle_ids")
        spaces.append(space)
    allocations = []
    for space in spaces:
        allocation = sequences.allocate(session, design, sequences.CLUSTER_STRATUM, space_id=space.id,
                                        actor_id=actor.id)
        space.arm_id = allocation.arm_id
        allocations.append(allocation)
        identity.audit(session, actor.id, "allocation.made", "allocation", allocation.id,
                       detail=f"circle {space.id} index {allocation.sequence_index} arm {allocation.arm_id}")
    session.flush()
    publish(session, "study.circles_allocated", Audience(), actor_id=actor.id, object_type="study",
            object_id=study.id, data={"study_id": study.id, "circle_ids": circle_ids})
    return allocations


# --- withdrawal ----------------------------------------------------------------------------------------

WITHDRAWABLE = (EnrolmentStatus.invited, EnrolmentStatus.eligible, EnrolmentStatus.consented,
                EnrolmentStatus.randomised)


def withdrawal_rule_text(rule: str) -> str:
    return WITHDRAWAL_RULES.get(rule, WITHDRAWAL_RULES["keep"])


def withdraw(session: Session, user: User, enrolment: Enrolment, *, reason: Any = "", confirm: bool = False
             ) -> Enrolment:
    """Leave the study: out of its circles, no further programme messages, and the study's
    stated rule applied to what the person wrote."""
    if enrolment.user_id != user.id:
        raise NotFound("No enrolment with that id.", field="enrolment_id")
    _require_status(enrolment, *WITHDRAWABLE, message="This enrolment has ended already.")
    reason = _text(reason, "reason", "reason", 1_000, required=False)
    if confirm is not True:
        raise InvalidInput("Confirm that you have read what happens to your data.", field="confirm")
    study = session.get(Study, enrolment.study_id)
    rule = design_of(session, study).withdrawal_rule or "keep"
    arm_ids = select(Arm.id).where(Arm.study_id == study.id)
    space_ids = list(session.scalars(select(Space.id).where(Space.arm_id.in_(arm_ids))))
    memberships = session.scalars(select(Membership).where(Membership.user_id == user.id,
                                                           Membership.space_id.in_(space_ids),
                                                           Membership.role.in_(MEMBER_ROLES))).all()
    for membership in memberships:
        session.execute(delete(Membership).where(Membership.id == membership.id))
        publish(session, "member.left", Audience(space_id=membership.space_id), actor_id=user.id,
                object_type="membership", object_id=membership.id,
                data={"circle_id": membership.space_id, "user_id": user.id, "withdrawn": True})
    from peerlift.protocols import service as protocols

    cancelled = protocols.cancel_for_person(session, user.id, space_ids, "the person withdrew from the study")
    if rule == "delete" and space_ids:
        _delete_writing(session, user, space_ids)
    now = utcnow()
    enrolment.status, enrolment.withdrawn_at = EnrolmentStatus.withdrawn, now
    enrolment.withdrawal_reason, enrolment.withdrawal_data = reason, rule
    session.flush()
    identity.audit(session, user.id, "enrolment.withdrawn", "enrolment", enrolment.id,
                   detail=f"data: {rule}; {cancelled} planned deliveries cancelled")
    publish(session, "enrolment.withdrawn", Audience(user_id=user.id), actor_id=user.id, object_type="enrolment",
            object_id=enrolment.id, data={"study_id": study.id, "data": rule})
    return enrolment


def _delete_writing(session: Session, user: User, space_ids: list[int]) -> None:
    now = utcnow()
    posts = select(Post.id).where(Post.author_id == user.id, Post.space_id.in_(space_ids))
    comments = select(Comment.id).join(Post, Post.id == Comment.post_id).where(
        Comment.author_id == user.id, Post.space_id.in_(space_ids))
    comment_ids = list(session.scalars(comments))
    post_ids = list(session.scalars(posts))
    live_counts = session.execute(select(Comment.post_id, func.count()).where(
        Comment.id.in_(comment_ids), Comment.deleted_at.is_(None)).group_by(Comment.post_id)).all()
    session.execute(delete(PostRevision).where(PostRevision.post_id.in_(post_ids)))
    session.execute(delete(CommentRevision).where(CommentRevision.comment_id.in_(comment_ids)))
    session.execute(update(Post).where(Post.id.in_(post_ids))
                    .values(body="", body_html="", deleted_at=func.coalesce(Post.deleted_at, now), pinned_at=None))
    session.execute(update(Comment).where(Comment.id.in_(comment_ids))
                    .values(body="", body_html="", deleted_at=func.coalesce(Comment.deleted_at, now)))
    for post_id, n in live_counts:  # other people's posts count only the comments still there
        session.execute(update(Post).where(Post.id == post_id, Post.comment_count >= n)
                        .values(comment_count=Post.comment_count - n))
    session.flush()
