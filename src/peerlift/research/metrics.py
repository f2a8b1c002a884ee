"""Engagement metrics of a study, per participant, circle, arm and day.

The database is read once into Parquet files (pyarrow; a snapshot of the cohort, its staff, their
events, tracking days and questionnaire requests), and DuckDB computes everything from those files,
so the same SQL runs over a demo study and over ten million events.

Who counts: the study's randomised enrolments (``Enrolment.randomised_at`` set, with an arm), each
from the moment of randomisation to now or their withdrawal; a person who withdrew and asked for their
data to be deleted is left out. A study with no randomised enrolment yet (circles run before the
enrolment flow existed) counts the members and peer supporters of its arms' circles from the day
they joined. Days and weeks are counted from each person's own start, so they need no time zone;
the calendar of the per-day series is UTC.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from peerlift.community.models import CircleRole, Membership, Space
from peerlift.db import utcnow
from peerlift.events import Event
from peerlift.research.eventfile import EVENT_SCHEMA, read_in_child, sqlite_query, sqlite_timestamps
from peerlift.research.models import Arm, Enrolment, Study, StudyDesign, StudyMember, StudyRole
from peerlift.tracking.models import Entry, QuestionnaireRequest

COUNTED = {"post.created": "posts", "comment.created": "comments", "reaction.added": "reactions",
           "poll.voted": "poll_votes", "message.created": "dms"}
# Events that are not the person engaging (account and membership housekeeping); every other event
# a participant is the actor of makes that day an active day.
NOT_ACTIVITY = ("user.created", "member.joined", "member.left", "member.role_changed", "password.reset",
                "password.changed", "notification_settings.updated", "two_factor.enabled", "two_factor.disabled")
STAFF_ROLES = (CircleRole.facilitator, CircleRole.clinician)
BATCH = 100_000

PEOPLE_SCHEMA = pa.schema([("user_id", pa.int64()), ("arm_id", pa.int64()), ("space_id", pa.int64()),
                           ("start_at", pa.timestamp("us", tz="UTC")), ("end_at", pa.timestamp("us", tz="UTC"))])


@dataclass(frozen=True)
class Participant:
    user_id: int
    arm_id: int
    space_id: int | None
    start_at: dt.datetime
    end_at: dt.datetime | None  # withdrawal
    enrolment_id: int | None


@dataclass
class Cohort:
    study: Study
    arms: dict[int, Arm]
    participants: list[Participant]
    staff: dict[int, str]  # user id -> role whose hourly rate applies
    circles: dict[int, str]
    circle_arms: dict[int, int]
    from_enrolments: bool


def cohort(session: Session, study: Study) -> Cohort:
    arms = {a.id: a for a in session.scalars(select(Arm).where(Arm.study_id == study.id).order_by(Arm.id))}
    rows = session.execute(select(Space.id, Space.name, Space.arm_id).where(Space.arm_id.in_(list(arms) or [0]))
                           .order_by(Space.id)).all()
    circles = {r[0]: r[1] for r in rows}
    circle_arms = {r[0]: r[2] for r in rows}
    home: dict[tuple[int, int], int] = {}
    for user_id, space_id, arm_id in session.execute(
            select(Membership.user_id, Membership.space_id, Space.arm_id).join(Space, Space.id == Membership.space_id)
            .where(Space.id.in_(list(circles) or [0])).order_by(Membership.id)):
        home.setdefault((user_id, arm_id), space_id)
    enrolments = session.scalars(select(Enrolment).where(
        Enrolment.study_id == study.id, Enrolment.randomised_at.is_not(None), Enrolment.arm_id.is_not(None),
        Enrolment.user_id.is_not(None)).order_by(Enrolment.id)).all()
    if enrolments:
        from peerlift.research.export import withdrawal_choice

        design = session.get(StudyDesign, study.id)
        # A person who withdrew and asked for their data to be deleted is not counted either.
        enrolments = [e for e in enrolments if e.withdrawn_at is None or withdrawal_choice(e, design) != "delete"]
        people = [Participant(e.user_id, e.arm_id, e.space_id or home.get((e.user_id, e.arm_id)), e.randomised_at,
                              e.withdrawn_at, e.id) for e in enrolments]
    else:
        people = [Participant(m.user_id, arm_id, m.space_id, m.joined_at, None, None) for m, arm_id in session.execute(
            select(Membership, Space.arm_id).join(Space, Space.id == Membership.space_id)
            .where(Space.id.in_(list(circles) or [0]),
                   Membership.role.in_((CircleRole.member, CircleRole.peer_supporter)))
            .order_by(Membership.user_id, Membership.id))]
        seen: set[int] = set()
        people = [p for p in people if not (p.user_id in seen or seen.add(p.user_id))]
    staff: dict[int, str] = {}
    for user_id, role in session.execute(select(StudyMember.user_id, StudyMember.role).where(
            StudyMember.study_id == study.id, StudyMember.role.in_((StudyRole.facilitator, StudyRole.clinician)))):
        staff[user_id] = role.value
    for user_id, role in session.execute(select(Membership.user_id, Membership.role).where(
            Membership.space_id.in_(list(circles) or [0]), Membership.role.in_(STAFF_ROLES))
            .order_by(Membership.role, Membership.id)):
        staff.setdefault(user_id, role.value)
    for p in people:
        staff.pop(p.user_id, None)
    return Cohort(study, arms, people, dict(sorted(staff.items())), circles, circle_arms, bool(enrolments))


# --- the snapshot ------------------------------------------------------------------------------

def write_events(session: Session, actors: list[int], path: Path, *, since: dt.datetime | None = None) -> int:
    """The events of these people to one Parquet file; returns the row count. A SQLite file is read
    by a child process through ADBC (see ``eventfile``: the whole table in one sequential scan, the
    rows of other people dropped column-wise); otherwise rows are read in batches and turned into
    columns at once, so memory stays flat, and PostgreSQL filters by person itself."""
    import pyarrow.compute as pc

    sqlite = session.get_bind().dialect.name == "sqlite"
    wanted = pa.array(sorted(set(actors)), pa.int64())
    since_text = None if since is None else since.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    database = session.get_bind().url.database
    if sqlite and database and database != ":memory:":
        rows = read_in_child(database, wanted, path, since_text)
        if rows is not None:
            return rows

    rows = 0
    with pq.ParquetWriter(path, EVENT_SCHEMA) as writer:
        def write(cols: list) -> int:
            at = sqlite_timestamps(list(cols[1])) if sqlite else pa.array(cols[1], pa.timestamp("us", tz="UTC"))
            table = pa.table([
                pa.array(cols[0], pa.int64()), at, pa.array(cols[2], pa.string()),
                pa.array(cols[3], pa.int64()), pa.array(cols[4], pa.int64()), pa.array(cols[5], pa.int64()),
                pa.array(cols[6], pa.int64()),
            ], schema=EVENT_SCHEMA)
            if sqlite:
                table = table.filter(pc.is_in(table["actor_id"], value_set=wanted))
            writer.write_table(table)
            return table.num_rows

        if sqlite:
            sql, params = sqlite_query(since_text)
            cursor = session.connection().connection.dbapi_connection.execute(sql, params)
            while batch := cursor.fetchmany(BATCH):
                rows += write(list(zip(*batch)))
        else:
            query = (select(Event.id, Event.at, Event.kind, Event.actor_id, Event.space_id,
                            Event.data["post_id"].as_integer(),
                            func.coalesce(Event.data["recipient_id"].as_integer(), Event.user_id))
                     .where(Event.actor_id.in_(actors or [0])))
            if since is not None:
                query = query.where(Event.at >= since)
            result = session.connection().execute(query.execution_options(yield_per=BATCH))
            for part in result.partitions(BATCH):
                rows += write(list(zip(*part)))
        if rows == 0:
            writer.write_table(EVENT_SCHEMA.empty_table())
    return rows


def write_snapshot(session: Session, c: Cohort, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.parquet"
             for name in ("people", "staff", "circles", "events", "entries", "requests")}
    ps = c.participants
    pq.write_table(pa.table({
        "user_id": pa.array([p.user_id for p in ps], pa.int64()), "arm_id": pa.array([p.arm_id for p in ps], pa.int64()),
        "space_id": pa.array([p.space_id for p in ps], pa.int64()),
        "start_at": pa.array([p.start_at for p in ps], pa.timestamp("us", tz="UTC")),
        "end_at": pa.array([p.end_at for p in ps], pa.timestamp("us", tz="UTC")),
    }, schema=PEOPLE_SCHEMA), paths["people"])
    pq.write_table(pa.table({"user_id": pa.array(list(c.staff), pa.int64()),
                             "role": pa.array(list(c.staff.values()), pa.string())}), paths["staff"])
    pq.write_table(pa.table({"space_id": pa.array(list(c.circle_arms), pa.int64()),
                             "arm_id": pa.array(list(c.circle_arms.values()), pa.int64())}), paths["circles"])
    write_events(session, [p.user_id for p in ps] + list(c.staff), paths["events"])
    ids = [p.user_id for p in ps] or [0]
    entries = session.execute(select(Entry.user_id, Entry.local_date).where(Entry.user_id.in_(ids))
                              .distinct()).all()
    pq.write_table(pa.table({"user_id": pa.array([e[0] for e in entries], pa.int64()),
                             "local_date": pa.array([e[1] for e in entries], pa.date32())}), paths["entries"])
    requests = session.execute(select(QuestionnaireRequest.user_id, QuestionnaireRequest.created_at,
                                      QuestionnaireRequest.answered_at)
                               .where(QuestionnaireRequest.user_id.in_(ids))).all()
    pq.write_table(pa.table({
        "user_id": pa.array([r[0] for r in requests], pa.int64()),
        "created_at": pa.array([r[1] for r in requests], pa.timestamp("us", tz="UTC")),
        "answered_at": pa.array([r[2] for r in requests], pa.timestamp("us", tz="UTC")),
    }), paths["requests"])
    return paths


# --- the metrics ---------------------------------------------------------------------------------

@dataclass
class Metrics:
    now: dt.datetime
    participants: list[dict[str, Any]]
    circles: list[dict[str, Any]]
    arms: list[dict[str, Any]]
    days: list[dict[str, Any]]
    retention: dict[int, list[float]]
    staff_time: list[dict[str, Any]] = field(default_factory=list)  # per staff person and arm
    fidelity: dict[int, dict[str, Any]] = field(default_factory=dict)

    def arm(self, arm_id: int) -> dict[str, Any]:
        return next(a for a in self.arms if a["arm_id"] == arm_id)

    def participant(self, user_id: int) -> dict[str, Any]:
        return next(p for p in self.participants if p["user_id"] == user_id)


def _records(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


# The participants' own actions within their enrolment, with the day of their enrolment each
# falls on; made once (a temporary table) and read by the per-participant and per-day queries.
ACTIONS_SQL = """
CREATE TEMP TABLE p AS
  SELECT user_id, arm_id, space_id, start_at, least(coalesce(end_at, $now), $now) AS stop_at FROM people;
CREATE TEMP TABLE ev AS
  SELECT p.user_id, p.arm_id, e.kind, e.at, e.post_id,
         CAST(floor((epoch(e.at) - epoch(p.start_at)) / 86400) AS BIGINT) AS day,
         CAST(floor(epoch(e.at) / 86400) AS BIGINT) AS calendar_day
  FROM events e JOIN p ON e.actor_id = p.user_id
  WHERE e.at >= p.start_at AND e.at <= p.stop_at AND e.kind NOT IN $not_activity;
"""

PARTICIPANT_SQL = """
WITH per AS (
  SELECT user_id,
    count(*) FILTER (WHERE kind = 'post.created') AS posts,
    count(*) FILTER (WHERE kind = 'comment.created') AS comments,
    count(*) FILTER (WHERE kind = 'reaction.added') AS reactions,
    count(*) FILTER (WHERE kind = 'poll.voted') AS poll_votes,
    count(*) FILTER (WHERE kind = 'message.created') AS dms,
    count(DISTINCT day) AS active_days,
    min(day) FILTER (WHERE kind = 'post.created') AS days_to_first_post,
    max(day) // 7 AS last_active_week,
    max(day) AS last_active_day
  FROM ev GROUP BY user_id
), answers AS (
  SELECT e.post_id, min(e.at) AS first_staff_at
  FROM events e SEMI JOIN staff s ON e.actor_id = s.user_id
  WHERE e.kind = 'comment.created' AND e.post_id IS NOT NULL
  GROUP BY e.post_id
), responses AS (
  SELECT ev.user_id,
    median((epoch(a.first_staff_at) - epoch(ev.at)) / 60.0) AS response_minutes,
    count(a.first_staff_at) AS posts_answered
  FROM ev LEFT JOIN answers a ON a.post_id = ev.post_id AND a.first_staff_at >= ev.at
  WHERE ev.kind = 'post.created'
  GROUP BY ev.user_id
), tracked AS (
  SELECT p.user_id, count(DISTINCT en.local_date) AS tracking_days
  FROM p JOIN entries en ON en.user_id = p.user_id
  WHERE en.local_date >= CAST(p.start_at AS DATE) AND en.local_date <= CAST(p.stop_at AS DATE)
  GROUP BY p.user_id
), asked AS (
  SELECT p.user_id, count(*) AS questionnaires_requested,
         count(r.answered_at) FILTER (WHERE r.answered_at <= p.stop_at) AS questionnaires_answered
  FROM p JOIN requests r ON r.user_id = p.user_id
  WHERE r.created_at >= p.start_at AND r.created_at <= p.stop_at
  GROUP BY p.user_id
)
SELECT p.user_id, p.arm_id, p.space_id AS circle_id, p.start_at,
  greatest(CAST(floor((epoch(p.stop_at) - epoch(p.start_at)) / 86400) AS BIGINT) + 1, 0) AS days_enrolled,
  coalesce(per.posts, 0) AS posts, coalesce(per.comments, 0) AS comments,
  coalesce(per.reactions, 0) AS reactions, coalesce(per.poll_votes, 0) AS poll_votes, coalesce(per.dms, 0) AS dms,
  coalesce(per.active_days, 0) AS active_days, per.days_to_first_post, per.last_active_week,
  per.last_active_day,
  responses.response_minutes, coalesce(responses.posts_answered, 0) AS posts_answered,
  coalesce(tracked.tracking_days, 0) AS tracking_days,
  coalesce(asked.questionnaires_requested, 0) AS questionnaires_requested,
  coalesce(asked.questionnaires_answered, 0) AS questionnaires_answered
FROM p
LEFT JOIN per ON per.user_id = p.user_id
LEFT JOIN responses ON responses.user_id = p.user_id
LEFT JOIN tracked ON tracked.user_id = p.user_id
LEFT JOIN asked ON asked.user_id = p.user_id
ORDER BY p.arm_id, p.user_id
"""

GROUP_SQL = """
SELECT {key},
  count(*) AS participants,
  sum(posts) AS posts, sum(comments) AS comments, sum(reactions) AS reactions,
  sum(poll_votes) AS poll_votes, sum(dms) AS dms,
  avg(active_days) AS mean_active_days,
  median(days_to_first_post) AS median_days_to_first_post,
  count(days_to_first_post) AS ever_posted,
  median(response_minutes) AS median_response_minutes,
  sum(posts_answered) AS posts_answered,
  avg(adherence) AS mean_adherence,
  sum(questionnaires_answered) AS questionnaires_answered,
  sum(questionnaires_requested) AS questionnaires_requested
FROM part GROUP BY {key} ORDER BY {key}
"""

DAYS_SQL = """
SELECT DATE '1970-01-01' + CAST(calendar_day AS INTEGER) AS day, arm_id,
  count(*) FILTER (WHERE kind = 'post.created') AS posts,
  count(*) FILTER (WHERE kind = 'comment.created') AS comments,
  count(*) FILTER (WHERE kind = 'reaction.added') AS reactions,
  count(*) FILTER (WHERE kind = 'poll.voted') AS poll_votes,
  count(*) FILTER (WHERE kind = 'message.created') AS dms,
  count(DISTINCT user_id) AS active_participants
FROM ev GROUP BY calendar_day, arm_id ORDER BY calendar_day, arm_id
"""


_NOT_ACTIVITY_SQL = "(" + ", ".join(f"'{k}'" for k in NOT_ACTIVITY) + ")"
ACTIONS_SQL = ACTIONS_SQL.replace("$not_activity", _NOT_ACTIVITY_SQL)


def compute(paths: dict[str, Path], now: dt.datetime | None = None) -> Metrics:
    """Every metric from the snapshot's Parquet files (DuckDB, in memory)."""
    now = now or utcnow()
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        for name, path in paths.items():
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{_sql_path(path)}')")
        for statement in ACTIONS_SQL.split(";"):
            if statement.strip():
                con.execute(statement.replace("$now", "$1"), [now] if "$now" in statement else [])
        con.execute(f"CREATE TEMP TABLE part AS SELECT *, "
                    f"CASE WHEN days_enrolled > 0 THEN tracking_days / days_enrolled END AS adherence, "
                    f"CASE WHEN questionnaires_requested > 0 "
                    f"THEN questionnaires_answered / questionnaires_requested END AS completion "
                    f"FROM ({PARTICIPANT_SQL})")
        participants = _records(con, "SELECT * FROM part ORDER BY arm_id, user_id")
        circles = _records(con, GROUP_SQL.format(key="circle_id"))
        arms = _records(con, GROUP_SQL.format(key="arm_id"))
        days = _records(con, DAYS_SQL)
        retention = _retention(con, now)
        from peerlift.research.cost import staff_time

        time_spent = staff_time(con)
    finally:
        con.close()
    for group in (*circles, *arms):
        req = group["questionnaires_requested"]
        group["completion"] = group["questionnaires_answered"] / req if req else None
    return Metrics(now, participants, circles, arms, days, retention, time_spent)


def _retention(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> dict[int, list[float]]:
    """Per arm, for each week since the start: of the participants enrolled that long, the share
    whose last activity came in that week or later (still active)."""
    rows = con.execute("""
        SELECT arm_id, days_enrolled, last_active_week FROM part
    """).fetchall()
    out: dict[int, list[float]] = {}
    by_arm: dict[int, list[tuple[int, int | None]]] = {}
    for arm_id, days, last in rows:
        by_arm.setdefault(arm_id, []).append((days, last))
    for arm_id, people in by_arm.items():
        weeks = max((d - 1) // 7 for d, _ in people) + 1 if people else 0
        curve = []
        for w in range(weeks):
            reached = [last for d, last in people if d > 7 * w]
            if not reached:
                break
            curve.append(sum(1 for last in reached if last is not None and last >= w) / len(reached))
        out[arm_id] = curve
    return out


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def study_metrics(session: Session, study: Study, *, now: dt.datetime | None = None,
                  with_fidelity: bool = True) -> Metrics:
    """The metrics of one study, with the protocol fidelity of each arm."""
    now = now or utcnow()
    c = cohort(session, study)
    with tempfile.TemporaryDirectory(prefix="peerlift-metrics-") as tmp:
        metrics = compute(write_snapshot(session, c, Path(tmp)), now)
    if with_fidelity:
        _add_fidelity(session, metrics, list(c.arms), now)
    return metrics


def _add_fidelity(session: Session, metrics: Metrics, arm_ids: list[int], now: dt.datetime) -> None:
    from peerlift.protocols.fidelity import report

    for arm_id in arm_ids:
        metrics.fidelity[arm_id] = report(session, arm_id=arm_id, now=now).total.as_dict()


# --- a short-lived cache for pages ---------------------------------------------------------------
# A dashboard and its chart images ask for the same study's metrics within a second of each other.
# Entries are keyed by the database, the study and the newest event id (every write records an
# event), live CACHE_SECONDS at most (time moves the retention and response figures), and
# simultaneous requests for one key wait for a single computation.

CACHE_SECONDS = 30.0
CACHE_ENTRIES = 8
_cache: OrderedDict[tuple, tuple[float, Metrics, bool]] = OrderedDict()  # key -> (made, metrics, fidelity?)
_cache_lock = threading.Lock()
_key_locks: dict[tuple, threading.Lock] = {}


def cached_study_metrics(session: Session, study: Study, *, with_fidelity: bool = True) -> Metrics:
    """``study_metrics`` for pages: the same figures, shared by requests made within moments."""
    key = (str(session.get_bind().url), study.id, session.scalar(select(func.max(Event.id))))
    with _cache_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        with _cache_lock:
            hit = _cache.get(key)
        if hit is None or time.monotonic() - hit[0] > CACHE_SECONDS:
            made, metrics, fidelity = time.monotonic(), study_metrics(session, study, with_fidelity=with_fidelity), \
                with_fidelity
        else:
            made, metrics, fidelity = hit
            if with_fidelity and not fidelity:
                arm_ids = session.scalars(select(Arm.id).where(Arm.study_id == study.id).order_by(Arm.id)).all()
                _add_fidelity(session, metrics, list(arm_ids), metrics.now)
                fidelity = True
        with _cache_lock:
            _cache[key] = (made, metrics, fidelity)
            _cache.move_to_end(key)
            while len(_cache) > CACHE_ENTRIES:
                old, _ = _cache.popitem(last=False)
                _key_locks.pop(old, None)
        return metrics
