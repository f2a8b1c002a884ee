"""A person's own data, downloaded as one zip: ``peerlift-data.json`` with everything, and one CSV
per kind (every CSV is there, with its header, even when the person has no rows of that kind).

Only what is the person's, or what they may see anyway: their profile, their writing, the direct
messages of their own conversations (both sides), their logs and answers, their enrolments and
consents, the flags they made, their sessions, and the audit entries about them. Not in it: other
people's private data, the safety team's records (triage results, review queue, escalations,
moderation notes, facilitator inbox cards), the study arm (a trial may be blinded) and secrets
(password hash, session tokens).

Rows are read once into plain dictionaries; the JSON file and the CSV files are written from those
same dictionaries straight into the zip's entries.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from peerlift.community.models import (
    Comment,
    CommentRevision,
    Conversation,
    Membership,
    Message,
    Poll,
    PollOption,
    PollVote,
    Post,
    PostRevision,
    Reaction,
    Space,
)
from peerlift.db import utcnow
from peerlift.identity.models import AuditEntry, AuthSession, User

FORMAT = "peerlift-personal-data/1"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Kind:
    key: str
    about: str
    columns: tuple[str, ...]
    rows: Callable[[Session, User], list[dict[str, Any]]]


def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _row(columns: tuple[str, ...], **values: Any) -> dict[str, Any]:
    return {c: _iso(values.get(c)) for c in columns}


# --- the kinds ---------------------------------------------------------------------------------------

PROFILE = ("id", "handle", "email", "display_name", "pseudonym", "pronouns", "bio", "timezone", "role", "created_at")


def _profile(s: Session, u: User) -> list[dict]:
    return [_row(PROFILE, **{c: getattr(u, c) for c in PROFILE})]


MEMBERSHIPS = ("circle_id", "circle_name", "role", "joined_at", "rules_accepted_at", "muted_until")


def _memberships(s: Session, u: User) -> list[dict]:
    return [_row(MEMBERSHIPS, circle_id=sp.id, circle_name=sp.name, role=m.role, joined_at=m.joined_at,
                 rules_accepted_at=m.rules_accepted_at, muted_until=m.muted_until)
            for m, sp in s.execute(select(Membership, Space).join(Space, Space.id == Membership.space_id)
                                   .where(Membership.user_id == u.id).order_by(Membership.id))]


POSTS = ("id", "circle_id", "circle_name", "body", "created_at", "edited_at", "deleted_at", "pinned_at",
         "visibility", "removed_reason", "poll_question", "poll_options", "is_question", "for_professionals",
         "accepted_comment_id")


def _posts(s: Session, u: User) -> list[dict]:
    rows = s.execute(select(Post, Space.name, Poll).join(Space, Space.id == Post.space_id)
                     .outerjoin(Poll, Poll.post_id == Post.id).where(Post.author_id == u.id).order_by(Post.id)).all()
    poll_ids = [poll.id for _p, _n, poll in rows if poll is not None]
    options: dict[int, list[str]] = {}
    for o in s.scalars(select(PollOption).where(PollOption.poll_id.in_(poll_ids or [0]))
                       .order_by(PollOption.poll_id, PollOption.position)):
        options.setdefault(o.poll_id, []).append(o.text)
    return [_row(POSTS, id=p.id, circle_id=p.space_id, circle_name=name, body=p.body, created_at=p.created_at,
                 edited_at=p.edited_at, deleted_at=p.deleted_at, pinned_at=p.pinned_at, visibility=p.visibility,
                 removed_reason=p.removed_reason, poll_question=poll.question if poll else None,
                 poll_options=options.get(poll.id, []) if poll else None, is_question=p.is_question,
                 for_professionals=p.for_professionals, accepted_comment_id=p.accepted_comment_id)
            for p, name, poll in rows]


REVISIONS = ("id", "post_id", "body", "written_at", "replaced_at")


def _post_revisions(s: Session, u: User) -> list[dict]:
    return [_row(REVISIONS, id=r.id, post_id=r.post_id, body=r.body, written_at=r.written_at,
                 replaced_at=r.replaced_at)
            for r in s.scalars(select(PostRevision).join(Post, Post.id == PostRevision.post_id)
                               .where(Post.author_id == u.id).order_by(PostRevision.id))]


COMMENTS = ("id", "post_id", "parent_id", "circle_id", "body", "created_at", "edited_at", "deleted_at",
            "visibility", "removed_reason", "as_professional")


def _comments(s: Session, u: User) -> list[dict]:
    return [_row(COMMENTS, id=c.id, post_id=c.post_id, parent_id=c.parent_id, circle_id=space_id, body=c.body,
                 created_at=c.created_at, edited_at=c.edited_at, deleted_at=c.deleted_at, visibility=c.visibility,
                 removed_reason=c.removed_reason, as_professional=c.as_professional)
            for c, space_id in s.execute(select(Comment, Post.space_id).join(Post, Post.id == Comment.post_id)
                                         .where(Comment.author_id == u.id).order_by(Comment.id))]


COMMENT_REVISIONS = ("id", "comment_id", "body", "written_at", "replaced_at")


def _comment_revisions(s: Session, u: User) -> list[dict]:
    return [_row(COMMENT_REVISIONS, id=r.id, comment_id=r.comment_id, body=r.body, written_at=r.written_at,
                 replaced_at=r.replaced_at)
            for r in s.scalars(select(CommentRevision).join(Comment, Comment.id == CommentRevision.comment_id)
                               .where(Comment.author_id == u.id).order_by(CommentRevision.id))]


REACTIONS = ("id", "kind", "post_id", "comment_id", "created_at")


def _reactions(s: Session, u: User) -> list[dict]:
    return [_row(REACTIONS, id=r.id, kind=r.kind, post_id=r.post_id, comment_id=r.comment_id, created_at=r.created_at)
            for r in s.scalars(select(Reaction).where(Reaction.user_id == u.id).order_by(Reaction.id))]


POLL_VOTES = ("id", "poll_id", "post_id", "question", "option_id", "option", "created_at")


def _poll_votes(s: Session, u: User) -> list[dict]:
    return [_row(POLL_VOTES, id=v.id, poll_id=poll.id, post_id=poll.post_id, question=poll.question,
                 option_id=o.id, option=o.text, created_at=v.created_at)
            for v, poll, o in s.execute(select(PollVote, Poll, PollOption).join(Poll, Poll.id == PollVote.poll_id)
                                        .join(PollOption, PollOption.id == PollVote.option_id)
                                        .where(PollVote.user_id == u.id).order_by(PollVote.id))]


MESSAGES = ("id", "conversation_id", "direction", "with_user_id", "with_name", "body", "created_at")


def _direct_messages(s: Session, u: User) -> list[dict]:
    """Both sides of the person's own conversations: they see them all in the app."""
    other = aliased(User)
    rows = s.execute(
        select(Message, other.id, other.display_name).join(Conversation, Conversation.id == Message.conversation_id)
        .join(other, or_(and_(Conversation.user_low_id == u.id, other.id == Conversation.user_high_id),
                         and_(Conversation.user_high_id == u.id, other.id == Conversation.user_low_id)))
        .order_by(Message.id)).all()
    return [_row(MESSAGES, id=m.id, conversation_id=m.conversation_id,
                 direction="sent" if m.sender_id == u.id else "received", with_user_id=other_id, with_name=name,
                 body=m.body, created_at=m.created_at)
            for m, other_id, name in rows]


NOTIFICATIONS = ("id", "kind", "text", "link", "circle_id", "post_id", "comment_id", "conversation_id",
                 "created_at", "read_at", "emailed_at")


def _notifications(s: Session, u: User) -> list[dict]:
    from peerlift.notify.models import Notification

    return [_row(NOTIFICATIONS, id=n.id, kind=n.kind, text=n.text, link=n.link, circle_id=n.space_id,
                 post_id=n.post_id, comment_id=n.comment_id, conversation_id=n.conversation_id,
                 created_at=n.created_at, read_at=n.read_at, emailed_at=n.emailed_at)
            for n in s.scalars(select(Notification).where(Notification.user_id == u.id).order_by(Notification.id))]


NOTIFICATION_SETTINGS = ("quiet_start", "quiet_end", "digest", "digest_hour", "channels")


def _notification_settings(s: Session, u: User) -> list[dict]:
    from peerlift.notify.models import Preference, Settings

    settings = s.get(Settings, u.id)
    channels = {p.kind.value: p.channel.value for p in s.scalars(select(Preference).where(Preference.user_id == u.id))}
    if settings is None and not channels:
        return []
    return [_row(NOTIFICATION_SETTINGS, quiet_start=settings.quiet_start if settings else None,
                 quiet_end=settings.quiet_end if settings else None, digest=settings.digest if settings else None,
                 digest_hour=settings.digest_hour if settings else None, channels=channels)]


ENTRIES = ("id", "measure", "local_date", "value", "unit", "recorded_at")


def _tracking_entries(s: Session, u: User) -> list[dict]:
    from peerlift.tracking.models import Entry

    return [_row(ENTRIES, id=e.id, measure=e.measure_key, local_date=e.local_date, value=e.value, unit=e.unit,
                 recorded_at=e.recorded_at)
            for e in s.scalars(select(Entry).where(Entry.user_id == u.id).order_by(Entry.local_date, Entry.id))]


ENTRY_REVISIONS = ("id", "entry_id", "value", "unit", "recorded_at", "replaced_at")


def _tracking_entry_revisions(s: Session, u: User) -> list[dict]:
    from peerlift.tracking.models import Entry, EntryRevision

    return [_row(ENTRY_REVISIONS, id=r.id, entry_id=r.entry_id, value=r.value, unit=r.unit, recorded_at=r.recorded_at,
                 replaced_at=r.replaced_at)
            for r in s.scalars(select(EntryRevision).join(Entry, Entry.id == EntryRevision.entry_id)
                               .where(Entry.user_id == u.id).order_by(EntryRevision.id))]


GOALS = ("weight_unit", "target_weight_kg", "daily_steps", "quit_date", "updated_at")


def _goals(s: Session, u: User) -> list[dict]:
    from peerlift.tracking.models import TrackingProfile

    p = s.get(TrackingProfile, u.id)
    return [] if p is None else [_row(GOALS, **{c: getattr(p, c) for c in GOALS})]


REQUESTS = ("id", "instrument", "source", "circle_id", "created_at", "answered_at")


def _questionnaire_requests(s: Session, u: User) -> list[dict]:
    from peerlift.tracking.models import QuestionnaireRequest

    return [_row(REQUESTS, id=r.id, instrument=r.instrument_key, source=r.source, circle_id=r.space_id,
                 created_at=r.created_at, answered_at=r.answered_at)
            for r in s.scalars(select(QuestionnaireRequest).where(QuestionnaireRequest.user_id == u.id)
                               .order_by(QuestionnaireRequest.id))]


RESPONSES = ("id", "request_id", "instrument", "instrument_version", "answers", "text_answers", "total",
             "percentage", "band", "alerts", "created_at")


def _questionnaire_responses(s: Session, u: User) -> list[dict]:
    from peerlift.tracking.models import QuestionnaireResponse

    return [_row(RESPONSES, id=r.id, request_id=r.request_id, instrument=r.instrument_key,
                 instrument_version=r.instrument_version, answers=r.answers, text_answers=r.text_answers,
                 total=r.total, percentage=r.percentage, band=r.band, alerts=r.alerts, created_at=r.created_at)
            for r in s.scalars(select(QuestionnaireResponse).where(QuestionnaireResponse.user_id == u.id)
                               .order_by(QuestionnaireResponse.id))]


ENROLMENTS = ("id", "study_id", "study_title", "status", "started_at", "screened_at", "screening_answers",
              "exclusion_reason", "consented_at", "randomised_at", "circle_id", "withdrawn_at", "withdrawal_reason",
              "withdrawal_data")


def _enrolments(s: Session, u: User) -> list[dict]:
    from peerlift.research.models import Enrolment, Study

    return [_row(ENROLMENTS, id=e.id, study_id=st.id, study_title=st.title, status=e.status, started_at=e.started_at,
                 screened_at=e.screened_at, screening_answers=e.screening_answers, exclusion_reason=e.exclusion_reason,
                 consented_at=e.consented_at, randomised_at=e.randomised_at, circle_id=e.space_id,
                 withdrawn_at=e.withdrawn_at, withdrawal_reason=e.withdrawal_reason, withdrawal_data=e.withdrawal_data)
            for e, st in s.execute(select(Enrolment, Study).join(Study, Study.id == Enrolment.study_id)
                                   .where(Enrolment.user_id == u.id).order_by(Enrolment.id))]


CONSENTS = ("id", "enrolment_id", "study_title", "document_title", "document_version", "sections_confirmed",
            "typed_name", "signed_at", "ip", "on_account_deletion")


def _consents(s: Session, u: User) -> list[dict]:
    from peerlift.research.models import Consent, ConsentDocument, Enrolment, Study
    from peerlift.research.service import deletion_rule

    return [_row(CONSENTS, id=c.id, enrolment_id=c.enrolment_id, study_title=st.title, document_title=d.title,
                 document_version=c.document_version, sections_confirmed=c.sections_confirmed,
                 typed_name=c.typed_name, signed_at=c.signed_at, ip=c.ip, on_account_deletion=deletion_rule(d))
            for c, d, st in s.execute(
                select(Consent, ConsentDocument, Study).join(ConsentDocument, ConsentDocument.id == Consent.document_id)
                .join(Enrolment, Enrolment.id == Consent.enrolment_id).join(Study, Study.id == Enrolment.study_id)
                .where(Enrolment.user_id == u.id).order_by(Consent.id))]


FLAGS = ("id", "object_type", "object_id", "reason", "note", "created_at")


def _flags(s: Session, u: User) -> list[dict]:
    from peerlift.safety.models import Flag

    return [_row(FLAGS, id=f.id, object_type=f.object_type, object_id=f.object_id, reason=f.reason, note=f.note,
                 created_at=f.created_at)
            for f in s.scalars(select(Flag).where(Flag.flagger_id == u.id).order_by(Flag.id))]


SESSIONS = ("id", "created_at", "last_seen_at", "expires_at", "ip_address", "user_agent")


def _sessions(s: Session, u: User) -> list[dict]:
    return [_row(SESSIONS, **{c: getattr(a, c) for c in SESSIONS})
            for a in s.scalars(select(AuthSession).where(AuthSession.user_id == u.id).order_by(AuthSession.id))]


AUDIT = ("id", "at", "action", "by", "object_type", "object_id", "ip_address", "detail")


def _audit_entries(s: Session, u: User) -> list[dict]:
    """What the person did, what was done to their account and enrolments, and failed sign-ins to it.
    The address an entry was made from is shown only for the person's own acts."""
    from peerlift.identity.service import _email_hash
    from peerlift.research.models import Enrolment

    mine = select(Enrolment.id).where(Enrolment.user_id == u.id)
    rows = s.scalars(select(AuditEntry).where(or_(
        AuditEntry.actor_id == u.id,
        and_(AuditEntry.object_type == "user", AuditEntry.object_id == u.id),
        and_(AuditEntry.object_type == "enrolment", AuditEntry.object_id.in_(mine)),
        and_(AuditEntry.action == "login.failed", AuditEntry.detail == f"account {_email_hash(u.email)[:12]}"),
    )).order_by(AuditEntry.id))
    out = []
    for e in rows:
        by = "you" if e.actor_id == u.id else ("peerlift" if e.actor_id is None else "someone else")
        out.append(_row(AUDIT, id=e.id, at=e.at, action=e.action, by=by, object_type=e.object_type,
                        object_id=e.object_id, ip_address=e.ip_address if e.actor_id == u.id else "",
                        detail=e.detail))
    return out


ACTIVITY = ("id", "at", "kind", "object_type", "object_id", "circle_id")


def _activity(s: Session, u: User) -> list[dict]:
    """The engagement record of what the person did (what research counts), without its payload."""
    from peerlift.events import Event

    return [_row(ACTIVITY, id=e.id, at=e.at, kind=e.kind, object_type=e.object_type, object_id=e.object_id,
                 circle_id=e.space_id)
            for e in s.scalars(select(Event).where(Event.actor_id == u.id).order_by(Event.id))]


STUDY_TEAM = ("study_id", "study_title", "role", "added_at")


def _study_team(s: Session, u: User) -> list[dict]:
    from peerlift.research.models import Study, StudyMember

    return [_row(STUDY_TEAM, study_id=st.id, study_title=st.title, role=m.role, added_at=m.added_at)
            for m, st in s.execute(select(StudyMember, Study).join(Study, Study.id == StudyMember.study_id)
                                   .where(StudyMember.user_id == u.id).order_by(StudyMember.id))]


HEALTH_PROFILE = ("conditions", "treatments", "goals", "age_band", "conditions_visibility", "treatments_visibility",
                  "goals_visibility", "diagnosis_years_visibility", "age_band_visibility", "suggest_me", "hidden",
                  "updated_at")


def _health_profile(s: Session, u: User) -> list[dict]:
    """The health profile, each field with who may see it (lists as JSON text in the CSV)."""
    from peerlift.people.models import HealthProfile

    profile = s.get(HealthProfile, u.id)
    return [] if profile is None else [_row(HEALTH_PROFILE, **{c: getattr(profile, c) for c in HEALTH_PROFILE})]


CONNECTIONS = ("id", "direction", "other_person_id", "note", "status", "created_at", "answered_at")


def _connection_requests(s: Session, u: User) -> list[dict]:
    """Requests to connect ("people like me") the person sent or received; the other side by id only."""
    from peerlift.people.models import ConnectionRequest

    rows = s.scalars(select(ConnectionRequest).where(or_(ConnectionRequest.sender_id == u.id,
                                                         ConnectionRequest.recipient_id == u.id))
                     .order_by(ConnectionRequest.id))
    return [_row(CONNECTIONS, id=r.id, direction="sent" if r.sender_id == u.id else "received",
                 other_person_id=r.recipient_id if r.sender_id == u.id else r.sender_id,
                 note=r.note, status=r.status,
                 created_at=r.created_at, answered_at=r.answered_at)
            for r in rows]


REPORTS = ("id", "circle_id", "circle_name", "treatment_code", "treatment_name", "duration_value", "duration_unit",
           "what_helped", "side_effects", "would_recommend", "body", "anonymous", "visibility", "removed_reason",
           "created_at", "edited_at", "deleted_at")


def _experience_reports(s: Session, u: User) -> list[dict]:
    """Experience reports the person wrote, including deleted and held ones (side effects as JSON text in the CSV)."""
    from peerlift.experience.models import ExperienceReport

    rows = s.execute(select(ExperienceReport, Space.name).join(Space, Space.id == ExperienceReport.space_id)
                     .where(ExperienceReport.author_id == u.id).order_by(ExperienceReport.id)).all()
    return [_row(REPORTS, circle_id=r.space_id, circle_name=name,
                 **{c: getattr(r, c) for c in REPORTS if c not in ("circle_id", "circle_name")})
            for r, name in rows]


HELPFUL = ("id", "target_type", "target_id", "created_at")


def _helpful_votes(s: Session, u: User) -> list[dict]:
    from peerlift.experience.models import HelpfulVote

    return [_row(HELPFUL, id=v.id, target_type=v.target_type, target_id=v.target_id, created_at=v.created_at)
            for v in s.scalars(select(HelpfulVote).where(HelpfulVote.user_id == u.id).order_by(HelpfulVote.id))]
PROFESSIONAL = ("id", "profession", "profession_other", "registration_number", "registry", "status", "applied_at",
                "decided_at", "reason")


def _professional_applications(s: Session, u: User) -> list[dict]:
    """Applications to be shown as a verified professional, and the admins' decisions (not who decided)."""
    from peerlift.professionals.models import Professional

    return [_row(PROFESSIONAL, id=p.id, profession=p.profession, profession_other=p.profession_other,
                 registration_number=p.registration_number, registry=p.registry_name, status=p.status,
                 applied_at=p.applied_at, decided_at=p.decided_at, reason=p.reason)
            for p in s.scalars(select(Professional).where(Professional.user_id == u.id).order_by(Professional.id))]


KINDS: tuple[Kind, ...] = (
    Kind("profile", "Your account: name, pronouns, bio, email address, time zone, role", PROFILE, _profile),
    Kind("memberships", "The circles you are in, and your role there", MEMBERSHIPS, _memberships),
    Kind("posts", "Your posts (with polls you asked), including deleted and held ones", POSTS, _posts),
    Kind("post_revisions", "Earlier texts of your posts, before each edit", REVISIONS, _post_revisions),
    Kind("comments", "Your comments", COMMENTS, _comments),
    Kind("comment_revisions", "Earlier texts of your comments", COMMENT_REVISIONS, _comment_revisions),
    Kind("reactions", "Your reactions to posts and comments", REACTIONS, _reactions),
    Kind("poll_votes", "Your votes in polls", POLL_VOTES, _poll_votes),
    Kind("direct_messages", "Direct messages you sent and received", MESSAGES, _direct_messages),
    Kind("notifications", "Your notifications", NOTIFICATIONS, _notifications),
    Kind("notification_settings", "Your quiet hours, digest and channels", NOTIFICATION_SETTINGS,
         _notification_settings),
    Kind("tracking_entries", "What you logged (weight, steps, mood, ...)", ENTRIES, _tracking_entries),
    Kind("tracking_entry_revisions", "Values you logged again over", ENTRY_REVISIONS, _tracking_entry_revisions),
    Kind("goals", "Your goals and units", GOALS, _goals),
    Kind("questionnaire_requests", "Questionnaires you were asked to answer", REQUESTS, _questionnaire_requests),
    Kind("questionnaire_responses", "Your questionnaire answers with their scores", RESPONSES,
         _questionnaire_responses),
    Kind("enrolments", "Your enrolments in studies: screening, consent, withdrawal", ENROLMENTS, _enrolments),
    Kind("consents", "The consents you signed, with the consent document version", CONSENTS, _consents),
    Kind("flags", "Writing you flagged for review", FLAGS, _flags),
    Kind("sessions", "Where you are signed in", SESSIONS, _sessions),
    Kind("audit_entries", "Audit trail entries about you and your account", AUDIT, _audit_entries),
    Kind("activity", "The engagement record of what you did", ACTIVITY, _activity),
    Kind("study_team", "Studies whose team you are on", STUDY_TEAM, _study_team),
    Kind("health_profile", "Your health profile and who may see each part", HEALTH_PROFILE, _health_profile),
    Kind("connection_requests", "Requests to connect you sent or received", CONNECTIONS, _connection_requests),
    Kind("experience_reports", "Your experience reports, including deleted and held ones", REPORTS,
         _experience_reports),
    Kind("helpful_votes", "Posts, answers and reports you marked helpful", HELPFUL, _helpful_votes),
    Kind("professional_applications", "Your applications as a verified professional, and their outcome",
         PROFESSIONAL, _professional_applications),
)


# --- the zip ----------------------------------------------------------------------------------------------

def collect(session: Session, user: User) -> dict[str, Any]:
    """Everything, as the JSON file has it: each kind a list of rows (the profile one row)."""
    data: dict[str, Any] = {"format": FORMAT, "exported_at": utcnow().isoformat(), "person_id": user.id,
                            "about": {k.key: k.about for k in KINDS}}
    for kind in KINDS:
        data[kind.key] = kind.rows(session, user)
    return data


def _cell(value: Any) -> Any:
    """A CSV cell: lists and mappings as JSON, and text that a spreadsheet would run as a formula
    opened with a leading apostrophe (the JSON file has the exact text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


README = """Your data from peerlift
=======================

peerlift-data.json  everything below in one file (UTF-8 JSON; "about" says what each part is)
{listing}

The CSV files are UTF-8 with a header row. Lists and mappings are written as JSON inside a cell;
text that a spreadsheet would treat as a formula starts with an apostrophe there (the JSON file
has the exact text). Times are UTC (ISO 8601).
"""


def write_zip(data: dict[str, Any], target) -> list[str]:
    """Write the zip to the binary file object ``target``; returns the names of its files."""
    names = ["peerlift-data.json", "README.txt"] + [f"{k.key}.csv" for k in KINDS]
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("peerlift-data.json", "w") as raw, io.TextIOWrapper(raw, encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, indent=2)
        listing = "\n".join(f"{k.key + '.csv':<30}{k.about}" for k in KINDS)
        zf.writestr("README.txt", README.format(listing=listing))
        for kind in KINDS:
            with zf.open(f"{kind.key}.csv", "w") as raw, \
                    io.TextIOWrapper(raw, encoding="utf-8", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(kind.columns)
                for row in data[kind.key]:
                    writer.writerow([_cell(row[c]) for c in kind.columns])
    return names


def build(session: Session, user: User) -> io.BytesIO:
    """The zip of ``user``'s data, in memory (one person's data is small), positioned at its start."""
    buffer = io.BytesIO()
    write_zip(collect(session, user), buffer)
    buffer.seek(0)
    return buffer


def chunks(buffer: io.BytesIO, size: int = 64 * 1024) -> Iterator[bytes]:
    """The bytes of ``buffer`` in pieces, for a streamed answer without copying the whole zip."""
    while piece := buffer.read(size):
        yield piece


def filename(user: User) -> str:
    return f"peerlift-data-{user.handle}-{utcnow():%Y%m%d}.zip"


def record_download(user_id: int, ip: str, size: int) -> None:
    """Audit a download. Downloads are read in a read-only unit of work; the entry gets a short
    write unit of its own (as touching a session does)."""
    from peerlift.db import transaction
    from peerlift.identity.service import audit

    with transaction() as write:
        audit(write, user_id, "data.exported", "user", user_id, ip=ip,
              detail=f"{len(KINDS)} kinds, {size:,} bytes zipped")
