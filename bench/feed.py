"""Feed benchmark: how fast is a circle's feed at 1k, 10k and 100k posts?

    .venv/bin/python bench/feed.py                  # the default run (make bench)
    .venv/bin/python bench/feed.py --quick          # smoke run: 1k posts, 3 s per scenario
    .venv/bin/python bench/feed.py --sizes 1000,100000 --backends sqlite --duration 10 --clients 16

For each backend (SQLite file in a temp dir; PostgreSQL in a fresh schema ``bench_feed`` at
$PEERLIFT_BENCH_POSTGRES_URL, dropped at the end) and each size N:

1. Alembic creates the schema (``peerlift.migrate.upgrade``).
2. A facilitator, a circle and 20 members are created through the service layer; then N posts
   (bodies of 50–600 characters rendered by ``peerlift.community.text.render``, created_at over
   90 days, authors spread over the members), their comments (``comment_count`` matches),
   ~2 reactions per post, a poll every ~100 posts with votes, 3 pinned posts and a few edited
   and deleted posts are bulk-inserted with SQLAlchemy Core (executemany, 5,000 rows a batch).
   Bulk rows produce no engagement ``event`` rows; the feed does not read them.
3. Read markers, set with ``service.mark_read``: three in four members have caught up (a few
   dozen posts unread); one in four never marked anything read (``last_read_post_id`` 0, as
   ``add_member`` leaves every new member). Results are also split by these two kinds of reader.
4. ``.venv/bin/peerlift serve --port P`` runs as its own process (uvicorn, one process).
5. ``--clients`` people sign in (own httpx.AsyncClient, cookie jar and CSRF header) and run,
   closed-loop for ``--duration`` seconds after a warm-up:
     * feed read    GET /api/v1/circles/{id}/posts?limit=20 (first page), all clients at once
     * feed single  the same with one request in flight (a caught-up and a never-read member
                    alternately): service time without queueing; a quarter of the duration
     * feed deep    all clients following next_cursor through pages 2-6; a quarter of the duration
     * feed busy    the first page read by all clients but one, which posts once a second: every
                    post changes the page, so each reader's next read computes it again (the server
                    keeps a feed answer per reader while its circle is unchanged, community/feed_cache.py;
                    the other scenarios read unchanged pages, --feed-cache-mb 0 turns that off)
     * post create  POST /api/v1/circles/{id}/posts (short body), all clients at once
6. Every request is timed (perf_counter) with its status; non-2xx answers count as errors.

Also, before the server starts, the feed's SQL is profiled in-process (``queries.feed`` for a
caught-up and a never-read member, each statement timed), so a latency that grows with N can
be traced to its statement.

Target (product spec): feed p99 <= 30 ms and flat from 1k to 100k posts, checked per backend as
p99(largest N) <= 30 ms and <= 1.5 x p99(smallest N), on the "feed read" scenario.

The load generator runs in this process on the same machine as the server; the table shows
the CPU both used (100 % = one core).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import re
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ApiClient,
    Balanced,
    Recorder,
    Server,
    closed_loop,
    console,
    drop_postgres_schema,
    fmt_count,
    fmt_ms,
    machine_info,
    migrate,
    postgres_base_url,
    postgres_problem,
    release_engines,
    reset_postgres_schema,
    run_async,
    sign_in_all,
    sqlite_url,
    summarise_load,
    sync_postgres_sequences,
    use_cheap_password_hashing,
    warn_if_busy,
    vacuum_analyze_postgres,
    write_results,
)
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table  # noqa: E402

PASSWORD = "bench-feed-password"
MEMBERS = 20
SCHEMA = "bench_feed"
BATCH = 5_000
PAGE = 20
DEEP_PAGES = 5
TARGET_P99_MS = 30.0
TARGET_FLAT_RATIO = 1.5
FEED_TABLES = ["user_account", "space", "membership", "post", "comment", "reaction", "poll",
               "poll_option", "poll_vote", "search_document"]  # search_document: filled by triggers

SCENARIOS = ("feed read", "feed single", "feed deep", "feed busy", "post create")


# --- realistic text ----------------------------------------------------------------------------------

_OPENERS = [
    "Morning all!", "Quick check-in from me.", "Small win today:", "Honest update:", "Week 6 and counting.",
    "Thought I'd share this.", "Does anyone else find", "Question for the group:", "Rough day, but",
    "Thank you all for the kind words yesterday.", "Update on the walking challenge:", "Confession time.",
]
_SENTENCES = [
    "I walked to the shops instead of driving and it only took twenty minutes.",
    "Swapped my usual biscuits for an apple with peanut butter and honestly did not miss them.",
    "The scales did not move this week but my jeans feel looser, so I'm counting that.",
    "Slept badly and then snacked all afternoon, which I know is a pattern for me.",
    "Meal-prepped three lunches on Sunday: lentil soup, a big salad and leftover chilli.",
    "My GP was pleased with my last blood test and the nurse said to keep going.",
    "Evenings are the hardest part for me, especially after a long shift.",
    "I tried the ten-minute stretching video that Maya posted and my back thanked me.",
    "Drank two litres of water every day this week, set reminders on my phone.",
    "Family birthday party at the weekend, so I planned ahead and had a proper breakfast.",
    "Anyone have tips for staying on track when travelling for work?",
    "I keep a food diary now and it is eye-opening how much I graze while cooking.",
    "Got off the bus a stop early every day this week.",
    "Feeling a bit flat, the novelty has worn off and it just feels like hard work now.",
    "Reading everyone's posts here really keeps me going, so thank you.",
    "The step count is up to about 7,000 on a good day, which is double what I started with.",
    "I found a swimming session at the leisure centre that is quiet on Tuesday mornings.",
    "Portion sizes are my nemesis, using a smaller plate has helped more than I expected.",
    "We cooked the veggie curry from last week's recipe thread and the kids actually ate it.",
    "My knee is playing up again so I'm doing the chair exercises instead of walking.",
    "Stress at work means I reach for chocolate, so I'm trying a short walk at lunch instead.",
    "Had a lapse on Friday but back on plan on Saturday, which is progress for me.",
    "Goal for next week: three home-cooked dinners and no takeaway.",
    "Has anyone tried the couch-to-5k app? I'm nervous about the running bits.",
]
_MARKDOWN_EXTRAS = [
    "\n\n**This week:**\n- walked 4 times\n- cooked 3 dinners\n- one takeaway (oops)",
    "\n\n*Feeling proud of myself for once.*",
    "\n\nLink I found useful: https://www.nhs.uk/live-well/exercise/",
    "\n\n> Progress, not perfection.\n\nSomeone said that here last month and it stuck.",
    "\n\n1. Plan meals\n2. Shop with a list\n3. Do not shop hungry",
]
_COMMENTS = [
    "Well done!", "That's a brilliant win, keep it up.", "Same here, evenings are tough.",
    "Thanks for sharing, this really helps.", "Have you tried a short walk after dinner? It helps me.",
    "Sending a hug, tomorrow is a new day.", "Love this!", "I'm going to try that recipe.",
    "Proud of you, that's not easy.", "Good question, I'd like to know too.",
    "Small steps add up. You've got this.", "My GP said something similar to me last year.",
]
_POLLS = [
    ("Which day works best for a group walk?", ["Saturday morning", "Sunday morning", "Wednesday evening"]),
    ("How many portions of veg did you manage yesterday?", ["0-2", "3-4", "5 or more"]),
    ("What's the hardest time of day for snacking?", ["Mid-morning", "Afternoon", "Evening", "Late night"]),
    ("Shall we start a step challenge next week?", ["Yes!", "Maybe", "Not for me"]),
]
_FIRST = ["Amara", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hassan", "Imogen", "Jonah", "Kemi",
          "Liam", "Maria", "Nadia", "Owen", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor"]
_LAST = ["Adeyemi", "Brooks", "Chen", "Doyle", "Evans", "Fischer", "Gupta", "Hughes", "Ibrahim", "Jones",
         "Kowalski", "Lee", "Morris", "Novak", "O'Brien", "Patel", "Quinlan", "Reid", "Singh", "Taylor",
         "Usman", "Vance"]


def make_body(rng: random.Random, lo: int = 50, hi: int = 600) -> str:
    # Mostly short, sometimes long: a skewed target length within [lo, hi].
    target = int(lo + (hi - lo) * rng.random() ** 1.6)
    parts = [rng.choice(_OPENERS)] if rng.random() < 0.7 else []
    while sum(len(p) + 1 for p in parts) < target:
        parts.append(rng.choice(_SENTENCES))
    body = " ".join(parts)
    if rng.random() < 0.15:
        body += rng.choice(_MARKDOWN_EXTRAS)
    if len(body) > hi:
        body = body[:hi].rsplit(" ", 1)[0].rstrip(",.:;") + "."
    if len(body) < lo:
        body = (body + " " + rng.choice(_SENTENCES))[:hi]
    return body


def make_comment(rng: random.Random) -> str:
    body = rng.choice(_COMMENTS)
    if rng.random() < 0.4:
        body += " " + rng.choice(_SENTENCES)
    return body


# --- seeding -------------------------------------------------------------------------------------------

@dataclass
class Person:
    email: str
    user_id: int
    reader: str  # "facilitator", "caught-up" or "never-read"


@dataclass
class Seeded:
    space_id: int
    facilitator: Person
    members: list[Person]
    rows: dict[str, int]
    seconds: float
    read_markers: dict[str, int] = field(default_factory=dict)


def _weighted_counts(rng: random.Random, values: list[int], weights: list[float], n: int) -> list[int]:
    return rng.choices(values, weights=weights, k=n)


CONTENT_TABLES = ("post", "reaction", "poll", "poll_option", "poll_vote")


@contextmanager
def feed_versions_paused(conn, space_id: int):
    """On PostgreSQL, the bulk load's transaction turns off the triggers that raise the circle's
    ``content_version`` (community/feed_cache.py): each inserted row would update the same ``space`` row,
    and within one transaction every update walks the chain of that row's earlier versions, so a load
    of 100k posts with their reactions took longer than 13 minutes. They are turned on again and the
    version raised once, in the same transaction. SQLite's triggers stay on (cheap)."""
    from sqlalchemy import text

    from peerlift.community.feed_cache import BUMP

    if conn.dialect.name != "postgresql":
        yield
        return
    for table in CONTENT_TABLES:
        conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER feed_version_{table}"))
    yield
    for table in CONTENT_TABLES:
        conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER feed_version_{table}"))
    conn.execute(text(BUMP.format(spaces=":space")), {"space": space_id})


def seed(url: str, n_posts: int, rng: random.Random) -> Seeded:
    """People and the circle through the services; content through Core executemany."""
    from sqlalchemy import func, insert, select

    from peerlift.community import service as community
    from peerlift.community.models import Comment, Poll, PollOption, PollVote, Post, Reaction
    from peerlift.community.models import REACTIONS
    from peerlift.community.text import render
    from peerlift.db import clock_at, get_engine, transaction
    from peerlift.identity import service as identity
    from peerlift.identity.models import Role, User
    from peerlift.policy import circle_access

    use_cheap_password_hashing()
    t_start = time.perf_counter()
    engine = get_engine(url)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(days=90)

    # People and the circle, dated just before the first post.
    with clock_at(start - dt.timedelta(days=1)), transaction(engine) as s:
        coach = identity.create_user(s, email="coach@bench.test", password=PASSWORD,
                                     display_name="Maya Bench-Coach", role=Role.facilitator,
                                     timezone="Europe/London")
        space = community.create_circle(
            s, coach, name="Bench Circle", description="A circle seeded by bench/feed.py.",
            rules="1. Be kind.\n2. What's shared here stays here.", timezone="Europe/London",
        )
        members = []
        for i in range(MEMBERS):
            user = identity.create_user(s, email=f"member{i + 1:02d}@bench.test", password=PASSWORD,
                                        display_name=f"{_FIRST[i % len(_FIRST)]} {_LAST[i % len(_LAST)]}",
                                        timezone="Europe/London")
            community.add_member(s, coach, space, user)
            members.append(user)
        space_id, coach_id = space.id, coach.id
        people_ids = [coach.id] + [m.id for m in members]
        member_rows = [(m.email, m.id) for m in members]

    write_engine = engine.execution_options(peerlift_write=True)
    with write_engine.connect() as conn:
        post_base = (conn.scalar(select(func.max(Post.id))) or 0) + 1
        comment_base = (conn.scalar(select(func.max(Comment.id))) or 0) + 1
        reaction_base = (conn.scalar(select(func.max(Reaction.id))) or 0) + 1
        poll_base = (conn.scalar(select(func.max(Poll.id))) or 0) + 1
        option_base = (conn.scalar(select(func.max(PollOption.id))) or 0) + 1
        vote_base = (conn.scalar(select(func.max(PollVote.id))) or 0) + 1
        conn.rollback()

    # --- plan the content (pure Python, deterministic from rng) ---
    distinct = max(50, min(3_000, n_posts // 4))
    bodies = [make_body(rng) for _ in range(distinct)]
    comment_bodies = sorted({make_comment(rng) for _ in range(400)})
    author_weights = [6.0] + [rng.uniform(0.3, 3.0) for _ in members]  # facilitator posts most
    span = (now - start).total_seconds() - 3600
    offsets = sorted(rng.uniform(0, span) for _ in range(n_posts))
    created = [start + dt.timedelta(seconds=o) for o in offsets]
    authors = rng.choices(people_ids, weights=author_weights, k=n_posts)
    body_idx = [rng.randrange(distinct) for _ in range(n_posts)]
    comment_counts = _weighted_counts(rng, [0, 1, 2, 3, 4, 5, 8, 12],
                                      [45, 20, 12, 8, 6, 4, 3, 2], n_posts)
    reaction_counts = _weighted_counts(rng, [0, 1, 2, 3, 4, 5, 6],
                                       [25, 25, 18, 12, 9, 6, 5], n_posts)
    pinned_idx = {max(0, int(n_posts * f)) for f in (0.02, 0.5, 0.9)}
    poll_idx = {i for i in range(50, n_posts, 97)} | {max(0, n_posts - 4)}
    poll_idx -= pinned_idx
    deleted_idx = {i for i in range(n_posts) if rng.random() < 0.005} - pinned_idx - poll_idx
    for i in pinned_idx:
        authors[i] = coach_id

    rendered: dict[int, str] = {}
    poll_plan: dict[int, tuple[str, list[str]]] = {}
    for i in sorted(poll_idx):
        poll_plan[i] = rng.choice(_POLLS)

    rows = {"posts": n_posts, "comments": sum(comment_counts), "reactions": sum(reaction_counts),
            "polls": len(poll_plan)}

    progress = Progress(TextColumn("  [bold]{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    with progress, write_engine.begin() as conn, feed_versions_paused(conn, space_id):
        task = progress.add_task("rendering bodies", total=distinct)
        for k, body in enumerate(bodies):
            rendered[k] = render(body)
            if k % 100 == 0:
                progress.update(task, completed=k)
        progress.update(task, completed=distinct)
        poll_html = {q: render(q) for q, _ in _POLLS}
        comment_html = {c: render(c) for c in comment_bodies}

        # posts
        task = progress.add_task(f"posts (batch {BATCH:,})", total=n_posts)
        batch: list[dict[str, Any]] = []
        for i in range(n_posts):
            at = created[i]
            if i in poll_plan:
                body, html = poll_plan[i][0], poll_html[poll_plan[i][0]]
            else:
                body, html = bodies[body_idx[i]], rendered[body_idx[i]]
            edited = at + dt.timedelta(minutes=rng.randint(1, 90)) if rng.random() < 0.02 else None
            batch.append({
                "id": post_base + i, "space_id": space_id, "author_id": authors[i], "body": body,
                "body_html": html, "created_at": at,
                "edited_at": edited if edited and edited < now else None,
                "deleted_at": at + dt.timedelta(hours=2) if i in deleted_idx else None,
                "pinned_at": at + dt.timedelta(hours=1) if i in pinned_idx else None,
                "comment_count": comment_counts[i],
            })
            if len(batch) >= BATCH:
                conn.execute(insert(Post.__table__), batch)
                progress.advance(task, len(batch))
                batch = []
        if batch:
            conn.execute(insert(Post.__table__), batch)
            progress.advance(task, len(batch))

        # comments (oldest first within each post; a quarter are replies to the first comment)
        task = progress.add_task("comments", total=rows["comments"])
        batch, cid = [], comment_base
        for i in range(n_posts):
            k = comment_counts[i]
            if not k:
                continue
            room = max(60.0, min(3 * 86400.0, (now - created[i]).total_seconds() - 60))
            first_id = cid
            for off in sorted(rng.uniform(30, room) for _ in range(k)):
                text_ = rng.choice(comment_bodies)
                batch.append({
                    "id": cid, "post_id": post_base + i,
                    "parent_id": first_id if cid != first_id and rng.random() < 0.25 else None,
                    "author_id": rng.choice(people_ids), "body": text_, "body_html": comment_html[text_],
                    "created_at": created[i] + dt.timedelta(seconds=off),
                    "edited_at": None, "deleted_at": None,
                })
                cid += 1
            if len(batch) >= BATCH:
                conn.execute(insert(Comment.__table__), batch)
                progress.advance(task, len(batch))
                batch = []
        if batch:
            conn.execute(insert(Comment.__table__), batch)
            progress.advance(task, len(batch))

        # reactions on posts (distinct people per post)
        task = progress.add_task("reactions", total=rows["reactions"])
        kind_weights = [40, 30, 12, 10, 8][: len(REACTIONS)]
        batch, rid = [], reaction_base
        for i in range(n_posts):
            k = reaction_counts[i]
            if not k:
                continue
            for user_id in rng.sample(people_ids, k):
                batch.append({
                    "id": rid, "post_id": post_base + i, "comment_id": None, "user_id": user_id,
                    "kind": rng.choices(REACTIONS, weights=kind_weights)[0],
                    "created_at": min(now, created[i] + dt.timedelta(minutes=rng.randint(1, 600))),
                })
                rid += 1
            if len(batch) >= BATCH:
                conn.execute(insert(Reaction.__table__), batch)
                progress.advance(task, len(batch))
                batch = []
        if batch:
            conn.execute(insert(Reaction.__table__), batch)
            progress.advance(task, len(batch))

        # polls, options and votes
        task = progress.add_task("polls and votes", total=len(poll_plan))
        polls, options, votes = [], [], []
        pid, oid, vid = poll_base, option_base, vote_base
        for i, (question, choices) in sorted(poll_plan.items()):
            closes = created[i] + dt.timedelta(days=7)
            polls.append({"id": pid, "post_id": post_base + i, "question": question, "multiple": False,
                          "closes_at": closes})
            option_ids = []
            for pos, choice in enumerate(choices):
                options.append({"id": oid, "poll_id": pid, "position": pos, "text": choice})
                option_ids.append(oid)
                oid += 1
            for user_id in rng.sample(people_ids, rng.randint(3, 12)):
                votes.append({"id": vid, "poll_id": pid, "option_id": rng.choice(option_ids),
                              "user_id": user_id,
                              "created_at": min(now, created[i] + dt.timedelta(hours=rng.randint(1, 48)))})
                vid += 1
            pid += 1
        for table, chunk_rows in ((Poll.__table__, polls), (PollOption.__table__, options),
                                  (PollVote.__table__, votes)):
            for j in range(0, len(chunk_rows), BATCH):
                conn.execute(insert(table), chunk_rows[j:j + BATCH])
        progress.update(task, completed=len(poll_plan))
        rows.update({"poll_options": len(options), "poll_votes": len(votes)})
        sync_postgres_sequences(conn, ["post", "comment", "reaction", "poll", "poll_option", "poll_vote"])

    # Read markers through the service: most members caught up recently, one in four never read.
    markers: dict[str, int] = {}
    people: list[Person] = []
    last_id = post_base + n_posts - 1
    with transaction(engine) as s:
        for i, (email, user_id) in enumerate(member_rows):
            reader = "never-read" if i % 4 == 3 else "caught-up"
            if reader == "caught-up":
                up_to = max(post_base, last_id - rng.randint(0, 40))
                community.mark_read(s, circle_access(s, s.get(User, user_id), space_id), up_to)
                markers[email] = up_to
            else:
                markers[email] = 0
            people.append(Person(email, user_id, reader))

    if engine.dialect.name == "postgresql":
        vacuum_analyze_postgres(url, FEED_TABLES)

    return Seeded(space_id=space_id, facilitator=Person("coach@bench.test", coach_id, "facilitator"),
                  members=people, rows=rows, seconds=time.perf_counter() - t_start, read_markers=markers)


# --- in-process SQL profile of queries.feed ------------------------------------------------------------

_SELECT = re.compile(r"^SELECT (.*?) FROM (.*)$", re.DOTALL)


def statement_label(sql: str) -> str:
    """A statement with its parameters, casts, IN-lists and column lists folded, same on both backends."""
    sql = " ".join(sql.split())
    sql = re.sub(r"%\(\w+\)s", "?", sql)                       # psycopg placeholders
    sql = re.sub(r"::[A-Z]+(?:\(\d+\))?", "", sql)                # PostgreSQL casts
    sql = re.sub(r"\(\?(?:, \?)*\)", "(…)", sql)                  # expanded IN lists
    sql = re.sub(r"LEFT OUTER JOIN (\w+) AS \w+ ON \S+ = \S+", r"LEFT JOIN \1", sql)
    m = _SELECT.match(sql)
    if m:
        cols, rest = m.groups()
        agg = re.findall(r"(count|sum|max|min)\(", cols)
        cols = ", ".join(f"{a}(…)" for a in dict.fromkeys(agg)) if agg else "…"
        sql = f"SELECT {cols} FROM {rest}"
    return sql


def profile_feed_sql(url: str, space_id: int, viewers: dict[str, int], repeats: int = 10) -> dict[str, Any]:
    """Mean time per SQL statement of ``queries.feed`` (first page) for each kind of viewer."""
    from sqlalchemy import event

    from peerlift.community import queries
    from peerlift.db import get_engine, make_session
    from peerlift.identity.models import User
    from peerlift.policy import circle_access

    engine = get_engine(url)
    per_stmt: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    totals: dict[str, list[float]] = defaultdict(list)
    order: list[str] = []
    state: dict[str, Any] = {"kind": None}

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_t0"] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        kind = state["kind"]
        if kind is None or statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA")):
            return
        label = statement_label(statement)
        if label not in order:
            order.append(label)
        per_stmt[label][kind].append((time.perf_counter() - conn.info.pop("bench_t0")) * 1000)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for kind, user_id in viewers.items():
            for r in range(repeats + 1):
                session = make_session(engine)
                try:
                    access = circle_access(session, session.get(User, user_id), space_id)
                    state["kind"] = kind if r else None  # the first call warms caches
                    t0 = time.perf_counter()
                    queries.feed(session, access, limit=PAGE)
                    if r:
                        totals[kind].append((time.perf_counter() - t0) * 1000)
                    state["kind"] = None
                finally:
                    session.close()
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    return {
        "repeats": repeats,
        "statements": [
            {"sql": label[:400], **{f"{k}_ms": mean(per_stmt[label][k]) for k in viewers}}
            for label in order
        ],
        "feed_total": {f"{k}_ms": mean(totals[k]) for k in viewers},
    }


# --- scenarios ----------------------------------------------------------------------------------------------

def short_duration(args) -> float:
    """Seconds measured for the secondary scenarios (feed single, feed deep)."""
    return max(2.0, args.duration / 4)


def feed_url(space_id: int) -> str:
    return f"/api/v1/circles/{space_id}/posts?limit={PAGE}"


def make_workers(space_id: int, light: bool = True):
    url = feed_url(space_id)

    def conn(client: ApiClient):
        return client.light() if light else client.http

    async def feed_read(rec, client: ApiClient, i: int) -> None:
        while rec.running:
            await rec.request(conn(client), "GET", url, tag=client.label)

    async def feed_single(rec, pair: tuple[ApiClient, ApiClient], i: int) -> None:
        # One request in flight at a time, alternating a caught-up and a never-read member:
        # the service time without queueing behind other clients.
        n = 0
        while rec.running:
            client = pair[n % 2]
            n += 1
            await rec.request(conn(client), "GET", url, tag=client.label)

    async def feed_deep(rec, client: ApiClient, i: int) -> None:
        first = await client.http.get(url)
        first.raise_for_status()
        cursor0 = first.json()["next_cursor"]
        while rec.running and cursor0 is not None:
            before = cursor0
            for _ in range(DEEP_PAGES):
                if not rec.running:
                    break
                response = await rec.request(conn(client), "GET", f"{url}&before={before}", tag=client.label)
                if response is None or response.status_code != 200:
                    break
                before = response.json()["next_cursor"]
                if before is None:
                    break

    async def feed_busy(rec, client: ApiClient, i: int) -> None:
        # Client 0 posts once a second (its posts are not timed); the others read the first page.
        n, untimed = 0, Recorder()
        while rec.running:
            if i == 0:
                n += 1
                body = f"Busy-circle check-in {n}: walked at lunch."
                posted = await untimed.request(conn(client), "POST", f"/api/v1/circles/{space_id}/posts",
                                               json={"body": body})
                if posted is None or posted.status_code != 201:
                    raise RuntimeError(f"the busy circle's post failed: {posted and posted.status_code}")
                await asyncio.sleep(1.0)
            else:
                await rec.request(conn(client), "GET", url, tag=client.label)

    async def post_create(rec, client: ApiClient, i: int) -> None:
        n = 0
        path = f"/api/v1/circles/{space_id}/posts"
        while rec.running:
            n += 1
            body = f"Check-in {n} from client {i}: 20-minute walk done, salad for lunch. Feeling good!"
            await rec.request(conn(client), "POST", path, json={"body": body}, tag=client.label)

    return {"feed read": feed_read, "feed single": feed_single, "feed deep": feed_deep,
            "feed busy": feed_busy, "post create": post_create}


async def check_feed(client: ApiClient, space_id: int) -> dict[str, Any]:
    """One request, to see the page has real content before measuring."""
    response = await client.http.get(feed_url(space_id))
    if response.status_code != 200:
        raise RuntimeError(f"feed answered {response.status_code}: {response.text[:300]}")
    body = response.json()
    posts = body["posts"]
    return {
        "posts": len(posts),
        "pinned": len(body["pinned"]),
        "polls": sum(1 for p in posts if p["poll"]),
        "reactions": sum(sum(p["reactions"].values()) for p in posts),
        "comments": sum(p["comment_count"] for p in posts),
        "unread_count": body["unread_count"],
        "bytes": len(response.content),
        "has_next": body["next_cursor"] is not None,
    }


async def run_scenarios(server: Server, seeded: Seeded, args) -> tuple[dict[str, Any], dict[str, Any]]:
    members = seeded.members
    people = [(members[i % len(members)].email, PASSWORD, members[i % len(members)].reader)
              for i in range(args.clients)]
    clients = await sign_in_all(server.base_url, people)
    try:
        sample = await check_feed(clients[0], seeded.space_id)
        console.print(f"    first page: {sample['posts']} posts, {sample['pinned']} pinned, {sample['polls']} poll(s), "
                      f"{sample['reactions']} reactions, {sample['comments']} comments, "
                      f"{sample['bytes'] / 1024:.0f} KiB; {len(clients)} clients signed in")
        if sample["posts"] != PAGE or not sample["has_next"]:
            console.print(f"    [yellow]the first page is not a full page with a next cursor: {sample}[/yellow]")
        workers = make_workers(seeded.space_id, light=args.client == "light")
        out: dict[str, Any] = {}
        pair = (next(c for c in clients if c.label == "caught-up"),
                next((c for c in clients if c.label == "never-read"), clients[-1]))
        for name in args.scenarios:
            duration = args.duration if name in ("feed read", "feed busy", "post create") else short_duration(args)
            result = await closed_loop([pair] if name == "feed single" else clients, workers[name],
                                       duration=duration, warmup=args.warmup, server=server)
            out[name] = summarise_load(result)
            s = out[name]
            console.print(
                f"    {name:<12}{s['requests']:>7,} req  {s['errors']:>4} err  {s['rps']:>7.1f} rps  "
                f"p50 {fmt_ms(s['p50_ms']):>6} ms  p99 {fmt_ms(s['p99_ms']):>6} ms  "
                f"(server CPU {s['server_cpu_pct'] or 0:.0f} %, client CPU {s['client_cpu_pct']:.0f} %)"
            )
            if s["worker_errors"]:
                console.print(f"    [red]worker errors:[/red] {s['worker_errors'][:3]}")
        return out, sample
    finally:
        for c in clients:
            await c.aclose()


# --- one case -------------------------------------------------------------------------------------------------

def run_case(backend: str, n_posts: int, args, workdir: Path, rng: random.Random) -> dict[str, Any]:
    case: dict[str, Any] = {"backend": backend, "posts": n_posts}
    if backend == "sqlite":
        db_dir = workdir / f"sqlite-{n_posts}"
        db_dir.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(db_dir)
    else:
        url = reset_postgres_schema(postgres_base_url(), SCHEMA)

    t0 = time.perf_counter()
    migrate(url)
    case["migrate_seconds"] = time.perf_counter() - t0
    seeded = seed(url, n_posts, rng)
    case["seed"] = {"seconds": seeded.seconds, "rows": seeded.rows}
    console.print(f"    seeded in {seeded.seconds:.1f} s: " +
                  ", ".join(f"{v:,} {k}" for k, v in seeded.rows.items()))

    caught_up = next(p for p in seeded.members if p.reader == "caught-up")
    never_read = next(p for p in seeded.members if p.reader == "never-read")
    case["sql_profile"] = profile_feed_sql(url, seeded.space_id,
                                           {"caught_up": caught_up.user_id, "never_read": never_read.user_id})
    release_engines()

    env = {} if args.feed_cache_mb is None else {"PEERLIFT_FEED_CACHE_MB": str(args.feed_cache_mb)}
    if args.processes > 1:
        server = Balanced(url, log_dir=workdir / f"processes-{backend}-{n_posts}", processes=args.processes,
                          redis_url=args.redis_url, extra_env=env)
    else:
        server = Server(url, log_path=workdir / f"server-{backend}-{n_posts}.log", extra_env=env)
    try:
        server.start()
        case["server_startup_seconds"] = server.startup_seconds
        scenarios, sample = run_async(run_scenarios(server, seeded, args))
        case["first_page"] = sample
        case["scenarios"] = scenarios
    except BaseException:
        console.print(f"[red]    server log (tail):[/red]\n{server.log_tail()}")
        raise
    finally:
        server.stop()
        release_engines()
    return case


# --- reporting ------------------------------------------------------------------------------------------------

def results_table(cases: list[dict[str, Any]]) -> Table:
    table = Table(title="peerlift feed benchmark", title_justify="left")
    for col, justify in [("backend", "left"), ("posts", "right"), ("scenario", "left"), ("requests", "right"),
                         ("errors", "right"), ("rps", "right"), ("p50 ms", "right"), ("p99 ms", "right"),
                         ("server CPU", "right"), ("client CPU", "right")]:
        table.add_column(col, justify=justify)
    for case in cases:
        for name, s in case.get("scenarios", {}).items():
            err = f"[red]{s['errors']:,}[/red]" if s["errors"] else "0"
            p99 = fmt_ms(s["p99_ms"])
            if name == "feed read" and s["p99_ms"] == s["p99_ms"]:
                p99 = f"[green]{p99}[/green]" if s["p99_ms"] <= TARGET_P99_MS else f"[red]{p99}[/red]"
            table.add_row(case["backend"], fmt_count(case["posts"]), name, f"{s['requests']:,}", err,
                          f"{s['rps']:.1f}", fmt_ms(s["p50_ms"]), p99,
                          f"{s['server_cpu_pct']:.0f} %" if s["server_cpu_pct"] is not None else "–",
                          f"{s['client_cpu_pct']:.0f} %")
        if "error" in case:
            table.add_row(case["backend"], fmt_count(case["posts"]), "[red]failed[/red]", "", "", "", "", "", "", "")
    return table


def reader_table(cases: list[dict[str, Any]]) -> Table:
    table = Table(title="by kind of reader (p50 / p99 ms)", title_justify="left")
    for col in ("backend", "posts", "scenario", "caught-up", "never-read"):
        table.add_column(col, justify="left" if col in ("backend", "scenario") else "right")
    for case in cases:
        for name, s in case.get("scenarios", {}).items():
            tags = s.get("by_tag", {})
            cells = []
            for tag in ("caught-up", "never-read"):
                t = tags.get(tag)
                cells.append(f"{fmt_ms(t['p50_ms'])} / {fmt_ms(t['p99_ms'])}" if t else "–")
            table.add_row(case["backend"], fmt_count(case["posts"]), name, *cells)
    return table


def sql_table(backend: str, cases: list[dict[str, Any]]) -> Table | None:
    mine = [c for c in cases if c["backend"] == backend and "sql_profile" in c]
    if not mine:
        return None
    table = Table(title=f"{backend}: queries.feed() SQL, mean ms in-process (caught-up / never-read member)",
                  title_justify="left")
    table.add_column("statement", overflow="fold", max_width=90)
    for c in mine:
        table.add_column(fmt_count(c["posts"]), justify="right")
    labels: list[str] = []
    for c in mine:
        for st in c["sql_profile"]["statements"]:
            if st["sql"] not in labels:
                labels.append(st["sql"])

    def cell(st: dict | None) -> str:
        if not st:
            return "–"
        return f"{fmt_ms(st.get('caught_up_ms'))} / {fmt_ms(st.get('never_read_ms'))}"

    for label in labels:
        row = []
        for c in mine:
            row.append(cell(next((s for s in c["sql_profile"]["statements"] if s["sql"] == label), None)))
        table.add_row(label[:220], *row)
    table.add_row("[bold]feed() total[/bold]", *[cell(c["sql_profile"]["feed_total"]) for c in mine])
    return table


def targets(cases: list[dict[str, Any]], backends: list[str]) -> dict[str, Any]:
    verdicts: dict[str, Any] = {}
    for backend in backends:
        single = {c["posts"]: c["scenarios"]["feed single"]["p99_ms"] for c in cases
                  if c["backend"] == backend and "feed single" in c.get("scenarios", {})}
        reads = sorted(((c["posts"], c["scenarios"]["feed read"]["p99_ms"]) for c in cases
                        if c["backend"] == backend and "feed read" in c.get("scenarios", {})))
        if not reads:
            continue
        (small_n, small_p99), (large_n, large_p99) = reads[0], reads[-1]
        abs_ok = large_p99 <= TARGET_P99_MS
        ratio = large_p99 / small_p99 if small_p99 > 0 and len(reads) > 1 else None
        flat_ok = ratio is None or ratio <= TARGET_FLAT_RATIO
        verdicts[backend] = {
            "smallest_posts": small_n, "smallest_p99_ms": small_p99,
            "largest_posts": large_n, "largest_p99_ms": large_p99,
            "p99_ok": abs_ok, "ratio": ratio, "flat_ok": flat_ok if ratio is not None else None,
            "met": abs_ok and flat_ok,
            "single_client_p99_ms": single,
        }
    return verdicts


def print_targets(verdicts: dict[str, Any]) -> None:
    console.print(f"\n[bold]Target[/bold]: feed read p99 <= {TARGET_P99_MS:.0f} ms at the largest size "
                  f"and <= {TARGET_FLAT_RATIO}x the p99 at the smallest size")
    for backend, v in verdicts.items():
        mark = "[green]MET[/green]" if v["met"] else "[red]NOT MET[/red]"
        flat = (f"{v['largest_p99_ms']:.1f} / {v['smallest_p99_ms']:.1f} = {v['ratio']:.2f}x "
                f"({'ok' if v['flat_ok'] else 'too steep'})" if v["ratio"] is not None
                else "flatness not checked (one size)")
        console.print(f"  {backend:<10} {mark}: p99 at {fmt_count(v['largest_posts'])} posts = "
                      f"{v['largest_p99_ms']:.1f} ms ({'ok' if v['p99_ok'] else 'over'}); {flat}")
        if v["single_client_p99_ms"]:
            console.print("  " + " " * 10 + " for context, p99 with one request in flight (feed single): " +
                          ", ".join(f"{fmt_count(n)} {fmt_ms(p)} ms"
                                    for n, p in sorted(v["single_client_p99_ms"].items())))


# --- main -----------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: 1k posts, 3 s per scenario")
    p.add_argument("--sizes", help="comma-separated post counts (default 1000,10000,100000)")
    p.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both")
    p.add_argument("--duration", type=float, help="seconds measured per scenario (default 20, --quick 3)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per scenario (default 1.5, --quick 0.5)")
    p.add_argument("--clients", type=int, default=16, help="concurrent signed-in clients (default 16)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"subset of: {', '.join(SCENARIOS)}")
    p.add_argument("--seed", type=int, default=20240601, help="random seed of the generated content")
    p.add_argument("--processes", type=int, default=1,
                   help="peerlift serve processes; more than one run behind nginx (least_conn) with Redis")
    p.add_argument("--redis-url", default=os.environ.get("PEERLIFT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
                   help="Redis for several processes (default $PEERLIFT_BENCH_REDIS_URL, else database 14 on localhost)")
    p.add_argument("--feed-cache-mb", type=int, default=None,
                   help="the servers' PEERLIFT_FEED_CACHE_MB (0: every read computes its page)")
    p.add_argument("--client", choices=("light", "httpx"), default="light",
                   help="load generator: a light HTTP/1.1 client (default) or httpx")
    args = p.parse_args(argv)
    args.sizes = [int(s.replace("_", "").replace("k", "000")) for s in
                  (args.sizes or ("1000" if args.quick else "1000,10000,100000")).split(",") if s.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in args.backends:
        if b not in ("sqlite", "postgresql"):
            p.error(f"unknown backend {b!r}")
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in args.scenarios:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s!r}")
    args.scenarios = [s for s in SCENARIOS if s in args.scenarios]  # post create last: it adds posts
    if args.duration is None:
        args.duration = 3.0 if args.quick else 20.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 1.5
    if args.clients < 1:
        p.error("--clients must be at least 1")
    if args.processes < 1:
        p.error("--processes must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC)
    machine = machine_info()
    console.rule("[bold]peerlift feed benchmark")
    console.print(
        f"sizes {', '.join(fmt_count(n) for n in args.sizes)}; backends {', '.join(args.backends)}; "
        f"{args.clients} clients; {args.duration:g} s per scenario after {args.warmup:g} s warm-up "
        f"(feed single and feed deep: {short_duration(args):g} s)"
    )
    console.print(
        f"[yellow]Note:[/yellow] the load generator (this process) runs on the same {machine['cpus']}-core "
        f"machine as the server and competes with it for CPU; see the client CPU column (100 % = one core)."
    )
    warn_if_busy()
    if machine.get("src_dirty"):
        console.print("[yellow]Note:[/yellow] src/ has uncommitted changes; results describe the working tree.")

    cases: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="peerlift-bench-feed-") as tmp:
        workdir = Path(tmp)
        for backend in args.backends:
            if backend == "postgresql":
                problem = postgres_problem(postgres_base_url())
                if problem:
                    console.print(f"[yellow]Skipping PostgreSQL[/yellow]: not reachable at "
                                  f"{postgres_base_url()} ({problem}). Set PEERLIFT_BENCH_POSTGRES_URL.")
                    skipped.append({"backend": backend, "reason": problem})
                    continue
            try:
                for n in args.sizes:
                    console.print(f"[bold cyan]{backend}[/bold cyan], {n:,} posts")
                    try:
                        cases.append(run_case(backend, n, args, workdir, random.Random(rng.random())))
                    except KeyboardInterrupt:
                        raise
                    except Exception as exc:  # noqa: BLE001 - report and go on with the next case
                        console.print(f"[red]    failed:[/red] {exc.__class__.__name__}: {exc}")
                        console.print(traceback.format_exc(limit=6), markup=False, highlight=False)
                        cases.append({"backend": backend, "posts": n, "error": f"{exc.__class__.__name__}: {exc}"})
                    finally:
                        release_engines()
                        if backend == "sqlite":
                            for f in (workdir / f"sqlite-{n}").glob("*"):
                                f.unlink(missing_ok=True)
            finally:
                if backend == "postgresql":
                    release_engines()
                    try:
                        drop_postgres_schema(postgres_base_url(), SCHEMA)
                    except Exception as exc:  # noqa: BLE001
                        console.print(f"[yellow]Could not drop schema {SCHEMA}: {exc}[/yellow]")

    total = time.perf_counter() - started
    console.print()
    verdicts = targets(cases, args.backends)
    if cases:
        console.print(results_table(cases))
        console.print(reader_table(cases))
        for backend in args.backends:
            table = sql_table(backend, cases)
            if table is not None:
                console.print(table)
        print_targets(verdicts)
    else:
        console.print("[yellow]No case ran[/yellow] (see the messages above).")
    cpus = machine["cpus"]
    console.print(f"\n[dim]Load generator and server share {cpus} cores: closed-loop latencies include time "
                  f"queued behind the other {args.clients - 1} clients, and the client's own CPU use "
                  f"(client CPU column) is taken from the server's share.[/dim]")

    payload = {
        "benchmark": "feed",
        "started_at": started_at.isoformat(),
        "total_seconds": total,
        "config": {"sizes": args.sizes, "backends": args.backends, "clients": args.clients,
                   "processes": args.processes, "client": args.client,
                   "duration": args.duration, "warmup": args.warmup, "scenarios": args.scenarios,
                   "quick": args.quick, "seed": args.seed, "members": MEMBERS, "page": PAGE,
                   "deep_pages": DEEP_PAGES, "batch": BATCH},
        "machine": machine,
        "target": {"p99_ms": TARGET_P99_MS, "flat_ratio": TARGET_FLAT_RATIO, "verdicts": verdicts},
        "skipped": skipped,
        "cases": cases,
    }
    path = write_results("feed", payload)
    console.print(f"Results: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    console.print(f"Total time: {total / 60:.1f} min ({total:.0f} s)")
    return 1 if any("error" in c for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
