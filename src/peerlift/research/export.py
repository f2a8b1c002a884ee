"""Research exports of one study: CSV, Parquet, HL7 FHIR R4B, CDC DPRP.

Who is exported: people who consented (a ``Consent`` row) and were randomised. A withdrawn person
is exported by the stated rule: ``Enrolment.withdrawal_data`` ("keep" or "delete"), else the first
word of ``StudyDesign.withdrawal_rule``; "delete" exports none of their rows, "keep" (the default)
exports what was recorded up to the withdrawal.

People appear only by pseudonym: ``P`` (participants) or ``S`` (staff) and the first 16 hex digits of
HMAC-SHA256(study key, user id). The key is made at the first export, kept in ``study_key`` and never
exported, so a study's pseudonyms are stable from export to export and differ between studies. No
email, name, handle, typed signature or IP address is exported; free text goes through
``safety.pii.scrub`` or, with ``free_text=False``, is left out.

An export is written to a temporary folder next to the destination and renamed into place at the
end, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import json
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from peerlift import __version__
from peerlift.community.models import Comment, Conversation, Membership, Message, PollVote, Post, Reaction, Space
from peerlift.db import utcnow
from peerlift.errors import Conflict, InvalidInput, NotFound
from peerlift.events import Event
from peerlift.identity.audit import Read, record_reads
from peerlift.research.analytics_models import StudyKey
from peerlift.research.models import (
    Allocation,
    Arm,
    Consent,
    Enrolment,
    EnrolmentStatus,
    Study,
    StudyDesign,
)
from peerlift.safety.pii import scrub

FORMATS = ("csv", "parquet", "fhir", "dprp")


# --- columns and the data dictionary ----------------------------------------------------------------

@dataclass(frozen=True)
class Col:
    name: str
    type: str          # integer, number, text, datetime, date, boolean
    description: str
    unit: str = ""
    allowed: str = ""
    free_text: bool = False


PID = Col("participant", "text", "Pseudonymous participant id (stable within the study)")


def _c(name, type_, description, unit="", allowed="", free_text=False) -> Col:
    return Col(name, type_, description, unit, allowed, free_text)


TABLES: dict[str, list[Col]] = {
    "participants": [
        PID, _c("arm", "text", "Arm slug the participant was randomised to"),
        _c("circle_id", "integer", "The circle (peer group) the participant was placed in"),
        _c("randomised_at", "datetime", "Time of randomisation (UTC)"),
        _c("status", "text", "Enrolment status at export", allowed="randomised;withdrawn"),
        _c("withdrawn_at", "datetime", "Time of withdrawal (UTC), empty if not withdrawn"),
        _c("strata", "text", "Declared stratification factor values, JSON"),
    ],
    "enrolments": [
        PID, _c("status", "text", "Enrolment status", allowed=";".join(s.value for s in EnrolmentStatus)),
        _c("started_at", "datetime", "Start of screening (UTC)"),
        _c("screened_at", "datetime", "End of screening (UTC)"),
        _c("consented_at", "datetime", "Time of consent (UTC)"),
        _c("randomised_at", "datetime", "Time of randomisation (UTC)"),
        _c("withdrawn_at", "datetime", "Time of withdrawal (UTC)"),
        _c("withdrawal_reason", "text", "Reason given for withdrawal (scrubbed)", free_text=True),
        _c("withdrawal_data", "text", "What happens to the data of a withdrawn person", allowed="keep;delete"),
    ],
    "consents": [
        PID, _c("document_version", "text", "Version of the consent document signed"),
        _c("sections_confirmed", "text", "Keys of the sections confirmed, separated by ;"),
        _c("signed_at", "datetime", "Time of signature (UTC)"),
    ],
    "allocations": [
        PID, _c("arm", "text", "Arm slug allocated"), _c("stratum", "text", "Stratum of the allocation"),
        _c("sequence_index", "integer", "Place in the concealed allocation sequence"),
        _c("allocated_at", "datetime", "Time of allocation (UTC)"),
    ],
    "circles": [
        _c("circle_id", "integer", "Circle id"), _c("name", "text", "Circle name"),
        _c("arm", "text", "Arm slug the circle belongs to"), _c("timezone", "text", "IANA time zone of the circle"),
        _c("created_at", "datetime", "Time the circle was created (UTC)"),
    ],
    "posts": [
        _c("post_id", "integer", "Post id"), _c("author", "text", "Pseudonym of the author (P... or S... for staff)"),
        _c("circle_id", "integer", "Circle id"), _c("created_at", "datetime", "Time posted (UTC)"),
        _c("edited", "boolean", "Whether the post was edited"), _c("deleted", "boolean", "Whether it was deleted"),
        _c("visibility", "text", "Moderation state", allowed="visible;held;removed"),
        _c("has_poll", "boolean", "Whether the post carries a poll"),
        _c("length", "integer", "Length of the text", unit="characters"),
        _c("body", "text", "Text of the post (scrubbed of personal information)", free_text=True),
    ],
    "comments": [
        _c("comment_id", "integer", "Comment id"), _c("post_id", "integer", "Post commented on"),
        _c("parent_id", "integer", "Comment replied to, if any"),
        _c("author", "text", "Pseudonym of the author (P... or S... for staff)"),
        _c("created_at", "datetime", "Time written (UTC)"), _c("deleted", "boolean", "Whether it was deleted"),
        _c("visibility", "text", "Moderation state", allowed="visible;held;removed"),
        _c("length", "integer", "Length of the text", unit="characters"),
        _c("body", "text", "Text of the comment (scrubbed of personal information)", free_text=True),
    ],
    "reactions": [
        _c("reaction_id", "integer", "Reaction id"), _c("person", "text", "Pseudonym of who reacted"),
        _c("post_id", "integer", "Post reacted to"), _c("comment_id", "integer", "Comment reacted to"),
        _c("kind", "text", "Reaction", allowed="like;heart;clap;hug;strong"),
        _c("created_at", "datetime", "Time (UTC)"),
    ],
    "poll_votes": [
        _c("vote_id", "integer", "Vote id"), _c("person", "text", "Pseudonym of the voter"),
        _c("poll_id", "integer", "Poll id"), _c("option_id", "integer", "Option chosen"),
        _c("created_at", "datetime", "Time (UTC)"),
    ],
    "dms": [
        _c("message_id", "integer", "Message id"), _c("conversation_id", "integer", "Conversation id"),
        _c("sender", "text", "Pseudonym of the sender"), _c("recipient", "text", "Pseudonym of the recipient"),
        _c("created_at", "datetime", "Time sent (UTC)"),
        _c("length", "integer", "Length of the message (its text is never exported)", unit="characters"),
    ],
    "engagement_events": [
        _c("event_id", "integer", "Event id (increasing)"), _c("at", "datetime", "Time (UTC)"),
        _c("kind", "text", "What happened, e.g. post.created, reaction.added, tracking.logged"),
        PID, _c("circle_id", "integer", "Circle, if the event happened in one"),
        _c("object_type", "text", "Type of the object acted on"), _c("object_id", "integer", "Id of that object"),
    ],
    "tracking_entries": [
        PID, _c("measure", "text", "Measure key, e.g. weight, steps, mood"),
        _c("local_date", "date", "The participant's local date the value is for"),
        _c("value", "number", "Value, in the unit of the next column"), _c("unit", "text", "Unit of the value"),
        _c("recorded_at", "datetime", "Time recorded (UTC)"),
    ],
    "questionnaire_responses": [
        _c("response_id", "integer", "Response id"), PID,
        _c("instrument", "text", "Instrument key", allowed="phq9;phq8;gad7;who5;auditc;ftnd or a custom key"),
        _c("instrument_version", "text", "Version of the instrument scored by"),
        _c("created_at", "datetime", "Time answered (UTC)"), _c("requested", "boolean", "Answered a request"),
        _c("answers", "text", "Item scores in item order, JSON list"),
        _c("total", "integer", "Total score", unit="points"), _c("percentage", "integer", "Percentage score (WHO-5)"),
        _c("band", "text", "Severity band"), _c("alerts", "text", "Alerts raised, separated by ;"),
        _c("text_answers", "text", "Free-text answers, JSON (scrubbed)", free_text=True),
    ],
    "deliveries": [
        _c("planned_id", "integer", "Planned delivery id"), _c("item_id", "text", "Protocol item"),
        _c("channel", "text", "Channel", allowed="circle_post;facilitator_dm;notification;email"),
        _c("day", "integer", "Protocol day", unit="days"),
        _c("person", "text", "Pseudonym of the recipient; empty for a post to the whole circle"),
        _c("circle_id", "integer", "Circle"), _c("planned_at", "datetime", "Planned time (UTC)"),
        _c("status", "text", "What became of it", allowed="planned;sent;skipped;cancelled;failed"),
        _c("sent_at", "datetime", "Time sent (UTC)"), _c("late_seconds", "integer", "Delay", unit="seconds"),
    ],
    "cue_decisions": [
        _c("decision_id", "integer", "Decision point id"), _c("ruleset", "text", "Rule file"),
        _c("ruleset_version", "text", "Version of the rule file"), _c("rule_id", "text", "Rule"),
        PID, _c("circle_id", "integer", "Circle"), _c("trigger", "text", "What triggered the decision"),
        _c("decided_at", "datetime", "Time (UTC)"), _c("available", "boolean", "Whether the person was available"),
        _c("unavailable_reason", "text", "Why not available"),
        _c("probability", "number", "Probability of sending (micro-randomisation)", unit="0-1"),
        _c("draw", "number", "The random draw (the coin flip); sent when draw < probability", unit="0-1"),
        _c("sent", "boolean", "Whether the cue was sent"), _c("action", "text", "What the cue does"),
    ],
}


def columns(table: str, free_text: bool) -> list[Col]:
    return [c for c in TABLES[table] if free_text or not c.free_text]


# --- resolving the study and the people --------------------------------------------------------------

def find_study(session: Session, ref: str) -> Study:
    ref = (ref or "").strip()
    study = session.scalar(select(Study).where(Study.slug == ref))
    if study is None and ref.isdigit():
        study = session.get(Study, int(ref))
    if study is None:
        raise NotFound(f"No study {ref!r} (give its slug or id).", field="study")
    return study


def study_key(session: Session, study: Study) -> bytes:
    row = session.get(StudyKey, study.id)
    if row is None:
        row = StudyKey(study_id=study.id, pseudonym_key=secrets.token_hex(32))
        session.add(row)
        session.flush()
    return bytes.fromhex(row.pseudonym_key)


@dataclass
class People:
    key: bytes
    enrolments: dict[int, Enrolment]          # user id -> enrolment of an exported participant
    cutoff: dict[int, dt.datetime]            # user id -> withdrawal time (rows after it are left out)
    staff: set[int] = field(default_factory=set)

    def pid(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        prefix = "P" if user_id in self.enrolments else "S"
        return prefix + hmac.new(self.key, f"user:{user_id}".encode(), hashlib.sha256).hexdigest()[:16]

    def keeps(self, user_id: int | None, when: dt.datetime | None) -> bool:
        """Whether a row a participant wrote at ``when`` is exported."""
        if user_id not in self.enrolments:
            return False
        stop = self.cutoff.get(user_id)
        return stop is None or when is None or when <= stop

    def known(self, user_id: int | None) -> bool:
        return user_id in self.enrolments or user_id in self.staff


def withdrawal_choice(enrolment: Enrolment, design: StudyDesign | None) -> str:
    if enrolment.withdrawal_data in ("keep", "delete"):
        return enrolment.withdrawal_data
    words = (design.withdrawal_rule if design else "").strip().lower().split()
    return "delete" if words and words[0].strip(".:,;") == "delete" else "keep"


def people(session: Session, study: Study) -> People:
    design = session.get(StudyDesign, study.id)
    consented = select(Consent.enrolment_id)
    rows = session.scalars(select(Enrolment).where(
        Enrolment.study_id == study.id, Enrolment.randomised_at.is_not(None), Enrolment.arm_id.is_not(None),
        Enrolment.user_id.is_not(None), Enrolment.id.in_(consented)).order_by(Enrolment.id)).all()
    enrolments, cutoff = {}, {}
    for e in rows:
        if e.status == EnrolmentStatus.withdrawn or e.withdrawn_at is not None:
            if withdrawal_choice(e, design) == "delete":
                continue
            if e.withdrawn_at is not None:
                cutoff[e.user_id] = e.withdrawn_at
        enrolments[e.user_id] = e
    circles = select(Space.id).join(Arm, Arm.id == Space.arm_id).where(Arm.study_id == study.id)
    staff = set(session.scalars(select(Membership.user_id).where(
        Membership.space_id.in_(circles), Membership.role.in_(("facilitator", "clinician")))))
    return People(study_key(session, study), enrolments, cutoff, staff - set(enrolments))


# --- the tables ------------------------------------------------------------------------------------------

@dataclass
class Context:
    session: Session
    study: Study
    people: People
    free_text: bool
    arms: dict[int, Arm]
    circles: dict[int, Space]
    region: str | None = None

    def text(self, value: str | None) -> str | None:
        return None if value is None else scrub(value, self.region)

    def arm_slug(self, arm_id: int | None) -> str | None:
        return self.arms[arm_id].slug if arm_id in self.arms else None


def context(session: Session, study: Study, *, free_text: bool = True) -> Context:
    from peerlift.settings import get_settings

    arms = {a.id: a for a in session.scalars(select(Arm).where(Arm.study_id == study.id).order_by(Arm.id))}
    circles = {s.id: s for s in session.scalars(select(Space).where(Space.arm_id.in_(list(arms) or [0]))
                                                .order_by(Space.id))}
    return Context(session, study, people(session, study), free_text, arms, circles, get_settings().country)


def _chunks(ids: list[int], size: int = 5000):
    ids = ids or [0]
    for k in range(0, len(ids), size):
        yield ids[k:k + size]


def t_participants(cx: Context):
    for user_id, e in cx.people.enrolments.items():
        yield {"participant": cx.people.pid(user_id), "arm": cx.arm_slug(e.arm_id), "circle_id": e.space_id,
               "randomised_at": e.randomised_at, "status": e.status.value, "withdrawn_at": e.withdrawn_at,
               "strata": json.dumps(e.strata or {}, sort_keys=True)}


def t_enrolments(cx: Context):
    for user_id, e in cx.people.enrolments.items():
        yield {"participant": cx.people.pid(user_id), "status": e.status.value, "started_at": e.started_at,
               "screened_at": e.screened_at, "consented_at": e.consented_at, "randomised_at": e.randomised_at,
               "withdrawn_at": e.withdrawn_at, "withdrawal_reason": cx.text(e.withdrawal_reason) or None,
               "withdrawal_data": e.withdrawal_data or None}


def t_consents(cx: Context):
    ids = {e.id: uid for uid, e in cx.people.enrolments.items()}
    for c in cx.session.scalars(select(Consent).where(Consent.enrolment_id.in_(list(ids) or [0])).order_by(Consent.id)):
        yield {"participant": cx.people.pid(ids[c.enrolment_id]), "document_version": c.document_version,
               "sections_confirmed": ";".join(str(k) for k in c.sections_confirmed or []), "signed_at": c.signed_at}


def t_allocations(cx: Context):
    ids = {e.id: uid for uid, e in cx.people.enrolments.items()}
    for a in cx.session.scalars(select(Allocation).where(Allocation.enrolment_id.in_(list(ids) or [0]))
                                .order_by(Allocation.id)):
        yield {"participant": cx.people.pid(ids[a.enrolment_id]), "arm": cx.arm_slug(a.arm_id), "stratum": a.stratum,
               "sequence_index": a.sequence_index, "allocated_at": a.allocated_at}


def t_circles(cx: Context):
    for s in cx.circles.values():
        yield {"circle_id": s.id, "name": s.name, "arm": cx.arm_slug(s.arm_id), "timezone": s.timezone,
               "created_at": s.created_at}


def _writer_kept(cx: Context, author_id: int, when: dt.datetime) -> bool:
    return author_id in cx.people.staff or cx.people.keeps(author_id, when)


def t_posts(cx: Context):
    from peerlift.community.models import Poll

    polls = set(cx.session.scalars(select(Poll.post_id).join(Post, Post.id == Poll.post_id)
                                   .where(Post.space_id.in_(list(cx.circles) or [0]))))
    for p in cx.session.scalars(select(Post).where(Post.space_id.in_(list(cx.circles) or [0])).order_by(Post.id)):
        if not _writer_kept(cx, p.author_id, p.created_at):
            continue
        yield {"post_id": p.id, "author": cx.people.pid(p.author_id), "circle_id": p.space_id,
               "created_at": p.created_at, "edited": p.edited_at is not None, "deleted": p.deleted_at is not None,
               "visibility": p.visibility, "has_poll": p.id in polls, "length": len(p.body),
               "body": cx.text(p.body)}


def t_comments(cx: Context):
    for c in cx.session.scalars(select(Comment).join(Post, Post.id == Comment.post_id)
                                .where(Post.space_id.in_(list(cx.circles) or [0])).order_by(Comment.id)):
        if not _writer_kept(cx, c.author_id, c.created_at):
            continue
        yield {"comment_id": c.id, "post_id": c.post_id, "parent_id": c.parent_id, "author": cx.people.pid(c.author_id),
               "created_at": c.created_at, "deleted": c.deleted_at is not None, "visibility": c.visibility,
               "length": len(c.body), "body": cx.text(c.body)}


def t_reactions(cx: Context):
    circles = list(cx.circles) or [0]
    on_posts = select(Post.id).where(Post.space_id.in_(circles))
    on_comments = select(Comment.id).join(Post, Post.id == Comment.post_id).where(Post.space_id.in_(circles))
    for r in cx.session.scalars(select(Reaction).where(
            or_(Reaction.post_id.in_(on_posts), Reaction.comment_id.in_(on_comments))).order_by(Reaction.id)):
        if not _writer_kept(cx, r.user_id, r.created_at):
            continue
        yield {"reaction_id": r.id, "person": cx.people.pid(r.user_id), "post_id": r.post_id,
               "comment_id": r.comment_id, "kind": r.kind, "created_at": r.created_at}


def t_poll_votes(cx: Context):
    from peerlift.community.models import Poll

    for v in cx.session.scalars(select(PollVote).join(Poll, Poll.id == PollVote.poll_id)
                                .join(Post, Post.id == Poll.post_id)
                                .where(Post.space_id.in_(list(cx.circles) or [0])).order_by(PollVote.id)):
        if not _writer_kept(cx, v.user_id, v.created_at):
            continue
        yield {"vote_id": v.id, "person": cx.people.pid(v.user_id), "poll_id": v.poll_id, "option_id": v.option_id,
               "created_at": v.created_at}


def t_dms(cx: Context):
    seen: set[int] = set()
    for chunk in _chunks(list(cx.people.enrolments)):
        rows = cx.session.execute(
            select(Message.id, Message.conversation_id, Message.sender_id, Message.created_at, Message.body,
                   Conversation.user_low_id, Conversation.user_high_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(or_(Conversation.user_low_id.in_(chunk), Conversation.user_high_id.in_(chunk)))
            .order_by(Message.id))
        for mid, cid, sender, at, body, low, high in rows:
            if mid in seen:
                continue
            seen.add(mid)
            recipient = high if sender == low else low
            # Both ends must be exported people or staff, and the participant's rows within their time.
            if not (cx.people.known(sender) and cx.people.known(recipient)):
                continue
            if any(u in cx.people.enrolments and not cx.people.keeps(u, at) for u in (sender, recipient)):
                continue
            yield {"message_id": mid, "conversation_id": cid, "sender": cx.people.pid(sender),
                   "recipient": cx.people.pid(recipient), "created_at": at, "length": len(body)}


def t_engagement_events(cx: Context):
    for chunk in _chunks(list(cx.people.enrolments)):
        for e in cx.session.scalars(select(Event).where(Event.actor_id.in_(chunk)).order_by(Event.id)
                                    .execution_options(yield_per=5000)):
            if not cx.people.keeps(e.actor_id, e.at):
                continue
            yield {"event_id": e.id, "at": e.at, "kind": e.kind, "participant": cx.people.pid(e.actor_id),
                   "circle_id": e.space_id, "object_type": e.object_type or None, "object_id": e.object_id}


def t_tracking_entries(cx: Context):
    from peerlift.tracking.models import Entry

    for chunk in _chunks(list(cx.people.enrolments)):
        for e in cx.session.scalars(select(Entry).where(Entry.user_id.in_(chunk)).order_by(Entry.id)):
            if cx.people.keeps(e.user_id, e.recorded_at):
                yield {"participant": cx.people.pid(e.user_id), "measure": e.measure_key, "local_date": e.local_date,
                       "value": e.value, "unit": e.unit, "recorded_at": e.recorded_at}


def t_questionnaire_responses(cx: Context):
    from peerlift.tracking.models import QuestionnaireResponse

    for chunk in _chunks(list(cx.people.enrolments)):
        for r in cx.session.scalars(select(QuestionnaireResponse).where(QuestionnaireResponse.user_id.in_(chunk))
                                    .order_by(QuestionnaireResponse.id)):
            if not cx.people.keeps(r.user_id, r.created_at):
                continue
            texts = {k: cx.text(v) for k, v in (r.text_answers or {}).items()}
            yield {"response_id": r.id, "participant": cx.people.pid(r.user_id), "instrument": r.instrument_key,
                   "instrument_version": r.instrument_version, "created_at": r.created_at,
                   "requested": r.request_id is not None, "answers": json.dumps(r.answers), "total": r.total,
                   "percentage": r.percentage, "band": r.band, "alerts": ";".join(r.alerts or []),
                   "text_answers": json.dumps(texts, sort_keys=True) if texts else None}


def t_deliveries(cx: Context):
    from peerlift.protocols.models import PlannedDelivery

    for d in cx.session.scalars(select(PlannedDelivery).where(PlannedDelivery.space_id.in_(list(cx.circles) or [0]))
                                .order_by(PlannedDelivery.id).execution_options(yield_per=5000)):
        if d.user_id is not None and not cx.people.keeps(d.user_id, d.planned_at):
            continue
        yield {"planned_id": d.id, "item_id": d.item_id, "channel": d.channel, "day": d.day,
               "person": cx.people.pid(d.user_id), "circle_id": d.space_id, "planned_at": d.planned_at,
               "status": d.status.value, "sent_at": d.sent_at, "late_seconds": d.late_seconds}


def t_cue_decisions(cx: Context):
    from peerlift.cues.queries import decisions

    for d in decisions(cx.session, study_id=cx.study.id):
        if not cx.people.keeps(d["user_id"], d["decided_at"]):
            continue
        yield {"decision_id": d["decision_id"], "ruleset": d["ruleset"], "ruleset_version": d["ruleset_version"],
               "rule_id": d["rule_id"], "participant": cx.people.pid(d["user_id"]), "circle_id": d["circle_id"],
               "trigger": d["trigger"], "decided_at": d["decided_at"], "available": d["available"],
               "unavailable_reason": d["unavailable_reason"], "probability": d["probability"], "draw": d["draw"],
               "sent": d["sent"], "action": d["action"]}


BUILDERS: dict[str, Callable[[Context], Any]] = {
    "participants": t_participants, "enrolments": t_enrolments, "consents": t_consents,
    "allocations": t_allocations, "circles": t_circles, "posts": t_posts, "comments": t_comments,
    "reactions": t_reactions, "poll_votes": t_poll_votes, "dms": t_dms, "engagement_events": t_engagement_events,
    "tracking_entries": t_tracking_entries, "questionnaire_responses": t_questionnaire_responses,
    "deliveries": t_deliveries, "cue_decisions": t_cue_decisions,
}


# --- writers -----------------------------------------------------------------------------------------

def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def write_csv(path: Path, cols: list[Col], rows) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([c.name for c in cols])
        for row in rows:
            writer.writerow([_csv_value(row.get(c.name)) for c in cols])
            count += 1
    return count


def _arrow_type(col: Col):
    import pyarrow as pa

    return {"integer": pa.int64(), "number": pa.float64(), "text": pa.string(), "boolean": pa.bool_(),
            "date": pa.date32(), "datetime": pa.timestamp("us", tz="UTC")}[col.type]


def write_parquet(path: Path, cols: list[Col], rows, batch: int = 50_000) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c.name, _arrow_type(c)) for c in cols])
    count, buffer = 0, []

    def flush(writer) -> None:
        writer.write_table(pa.table({c.name: pa.array([r.get(c.name) for r in buffer], _arrow_type(c)) for c in cols},
                                    schema=schema))
        buffer.clear()

    with pq.ParquetWriter(path, schema) as writer:
        for row in rows:
            buffer.append(row)
            count += 1
            if len(buffer) >= batch:
                flush(writer)
        if buffer or count == 0:
            flush(writer)
    return count


def write_dictionary(path: Path, free_text: bool, tables: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["variable", "table", "type", "unit", "description", "allowed_values"])
        for table in tables:
            for c in columns(table, free_text):
                writer.writerow([c.name, table, c.type, c.unit, c.description, c.allowed])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, study: Study, fmt: str, counts: dict[str, int], options: dict) -> dict:
    files = []
    for path in sorted(directory.iterdir()):
        if path.name == "manifest.json":
            continue
        files.append({"file": path.name, "rows": counts.get(path.name), "sha256": sha256_of(path)})
    manifest = {"study": {"id": study.id, "slug": study.slug, "title": study.title, "registry_id": study.registry_id},
                "format": fmt, "exported_at": utcnow().isoformat().replace("+00:00", "Z"),
                "software": {"name": "peerlift", "version": __version__}, "options": options, "files": files}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


# --- the export ----------------------------------------------------------------------------------------

def check_destination(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"{out} exists and is not a folder.", field="out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise Conflict(f"{out} is not empty; choose an empty folder or pass --force to replace it.", field="out")


def export(session: Session, study_ref: str, fmt: str, out: Path, *, force: bool = False, free_text: bool = True,
           arm: str | None = None, progress: Callable[[str], None] | None = None,
           actor_id: int | None = None) -> dict:
    """Write the export and return its manifest. Nothing is left at ``out`` if it fails. Each
    participant exported gets an entry on the audit trail (``actor_id`` None: the command line)."""
    say = progress or (lambda _what: None)
    if fmt not in FORMATS:
        raise InvalidInput(f"Unknown format {fmt!r}; use one of: {', '.join(FORMATS)}.", field="format")
    study = find_study(session, study_ref)
    out = Path(out)
    check_destination(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        cx = context(session, study, free_text=free_text)
        counts: dict[str, int] = {}
        if fmt in ("csv", "parquet"):
            names = list(BUILDERS)
            for name in names:
                say(name)
                cols = columns(name, free_text)
                if fmt == "csv":
                    counts[f"{name}.csv"] = write_csv(tmp / f"{name}.csv", cols, BUILDERS[name](cx))
                else:
                    counts[f"{name}.parquet"] = write_parquet(tmp / f"{name}.parquet", cols, BUILDERS[name](cx))
            write_dictionary(tmp / "data_dictionary.csv", free_text, names)
        elif fmt == "fhir":
            from peerlift.research.export_fhir import bundle

            say("FHIR bundle")
            b = bundle(cx)
            (tmp / "bundle.json").write_text(b.model_dump_json(indent=1, exclude_none=True), encoding="utf-8")
            counts["bundle.json"] = len(b.entry or [])
        else:
            from peerlift.research.dprp import write_dprp

            say("DPRP sessions")
            counts["dprp.csv"] = write_dprp(cx, tmp / "dprp.csv", arm=arm)
        manifest = write_manifest(tmp, study, fmt, counts, {"free_text": free_text, "arm": arm})
        record_reads(session, actor_id, [Read("read.research_export", user_id, "study", study.id, f"{fmt} export")
                                         for user_id in cx.people.enrolments])
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
