"""Search benchmark: full-text search over many posts, through the HTTP API of one ``peerlift serve``.

    .venv/bin/python bench/search.py                       # 1,000,000 posts, both backends (make bench-search)
    .venv/bin/python bench/search.py --posts 100000        # a smaller index
    .venv/bin/python bench/search.py --quick               # smoke run: 20k posts, 3 s per scenario
    .venv/bin/python bench/search.py --processes 2         # two peerlift serve behind nginx (make nginx)

For each backend (SQLite file in a temp dir; PostgreSQL in a fresh schema ``bench_search`` at
$PEERLIFT_BENCH_POSTGRES_URL, dropped at the end):

1. Alembic creates the schema; 200 spaces (circles) and 40 authors (36 participants, 4 facilitators)
   are inserted; the searcher, a participant, is a member of 5 of the spaces (about 2.5 % of the posts).
2. N posts are generated: 15–90 words each, drawn from a Zipf-like distribution over a vocabulary of
   English function words, ~250 everyday health words and 30,000 rarer words; spread evenly over the
   spaces and over a year; bulk-inserted with SQLAlchemy Core (executemany, 10,000 rows a batch).
3. The index is built the way ``peerlift search reindex`` builds it (``search.index.reindex``), timed.
4. ``.venv/bin/peerlift serve`` runs as its own process (or ``--processes`` of them behind nginx);
   ``--clients`` clients sign in as the searcher and query ``GET /api/v1/search?q=...&limit=20``
   through the light HTTP/1.1 client of ``_common`` closed-loop for ``--duration`` seconds, cycling through
   common terms (each in ~5–20 % of posts), rare terms (a few dozen posts), and two-word queries.

Target: p99 <= 100 ms at 16 concurrent clients. The load generator runs on the same machine as the
server; both share its cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Balanced,
    Server,
    console,
    drop_postgres_schema,
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
    vacuum_analyze_postgres,
    warn_if_busy,
    write_results,
    closed_loop,
)
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

PASSWORD = "bench password 123"
SPACES = 200
SEARCHER_SPACES = 5
AUTHORS = 40
BATCH = 10_000
SCHEMA = "bench_search"

FUNCTION = ("the and to a i of in it my for was is that on with but have at this so me just be not "
            "had about all out up today we what when after did get can one day been").split()
HEALTH = ("walk walked walking sleep slept tired pain knee back run running steps goal goals week morning "
          "evening night weight scale meal dinner lunch breakfast water hydration stress anxious anxiety calm "
          "breathing breath mood happy sad energy doctor nurse coach group circle friend family work job "
          "stretch stretching yoga swim swimming bike cycling gym workout rest headache blood pressure sugar "
          "insulin diet vegetables fruit snack craving cravings smoking quit quitting cigarette medication pills "
          "appointment therapy session journal gratitude progress setback motivation habit habits routine "
          "weekend rain sunny park river hill stairs heart rate tracker app phone screen bed alarm nap coffee "
          "tea alcohol wine beer sober meeting share support thanks helpful advice question tip tips plan "
          "schedule time minutes hours kilometres miles pace slow fast strong weak sore ache muscle joint "
          "physio injury recovery better worse same hard easy proud tried try trying start started finish "
          "finished lost gained pounds kilos recipe soup salad bread rice pasta chicken fish beans lentils "
          "oats porridge eggs cheese chocolate sweets hungry full portion plate kitchen shopping list "
          "budget money car bus train cold warm hot winter summer spring autumn holiday trip garden dog "
          "cat kids children partner husband wife mum dad sister brother neighbour colleague boss").split()


def _vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    rare = set()
    syllables = ["ka", "lo", "mi", "tu", "re", "sa", "no", "vi", "de", "po", "ra", "li", "mu", "te", "zo", "ba",
                 "fe", "gi", "ho", "ju", "ne", "qu", "si", "wa", "xe", "yo"]
    while len(rare) < 30_000:
        rare.add("".join(rng.choice(syllables) for _ in range(rng.randint(3, 4))))
    words = FUNCTION + HEALTH + sorted(rare)
    # Function words: very common; health words and rare words: Zipf over their rank.
    weights = [40.0 / (i + 1) ** 0.5 for i in range(len(FUNCTION))]
    weights += [3.0 / (i + 1) ** 0.6 for i in range(len(HEALTH))]
    weights += [0.5 / (i + 1) for i in range(len(rare))]
    cumulative = list(itertools.accumulate(weights))
    return words, cumulative


def seed(url: str, n_posts: int, rng: random.Random) -> dict:
    from sqlalchemy import func, insert, select

    from peerlift.community.models import Membership, Post, Space
    from peerlift.db import get_engine, transaction
    from peerlift.identity import service as identity
    from peerlift.identity.models import Role
    from peerlift.search.index import reindex

    use_cheap_password_hashing()
    engine = get_engine(url)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with transaction(engine) as s:
        searcher = identity.create_user(s, email="searcher@bench.test", password=PASSWORD,
                                        display_name="Sam Searcher", timezone="Europe/London")
        authors = [identity.create_user(s, email=f"author{i}@bench.test", password=PASSWORD,
                                        display_name=f"Author {i}", timezone="Europe/London",
                                        role=Role.facilitator if i % 10 == 0 else Role.participant)
                   for i in range(AUTHORS)]
        searcher_id, author_ids = searcher.id, [a.id for a in authors]
    write = engine.execution_options(peerlift_write=True)
    with write.begin() as conn:
        conn.execute(insert(Space.__table__), [
            {"id": i + 1, "kind": "circle", "name": f"Circle {i + 1}", "description": "", "rules": "",
             "timezone": "Europe/London", "allow_member_dms": False, "premoderated": False,
             "created_at": now - dt.timedelta(days=400)} for i in range(SPACES)])
        mine = rng.sample(range(1, SPACES + 1), SEARCHER_SPACES)
        conn.execute(insert(Membership.__table__), [
            {"space_id": space_id, "user_id": searcher_id, "role": "member", "joined_at": now,
             "last_read_post_id": 0, "gated": False} for space_id in mine])
        sync_postgres_sequences(conn, ["space"])
    words, cumulative = _vocabulary(rng)
    timings = {}
    t0 = time.perf_counter()
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)
    with progress:
        task = progress.add_task("Inserting posts", total=n_posts)
        with write.connect() as conn:
            base = (conn.scalar(select(func.max(Post.id))) or 0) + 1
            conn.rollback()
        for start in range(0, n_posts, BATCH):
            rows = []
            for i in range(start, min(n_posts, start + BATCH)):
                body = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(15, 90)))
                body = body[0].upper() + body[1:] + "."
                rows.append({"id": base + i, "space_id": 1 + i % SPACES, "author_id": author_ids[i % AUTHORS],
                             "body": body, "body_html": f"<p>{body}</p>",
                             "created_at": now - dt.timedelta(seconds=(n_posts - i) * 31_536_000 // n_posts),
                             "comment_count": 0, "visibility": "visible", "removed_reason": ""})
            with write.begin() as conn:
                conn.execute(insert(Post.__table__), rows)
            progress.advance(task, len(rows))
        with write.begin() as conn:
            sync_postgres_sequences(conn, ["post"])
        timings["insert_posts_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        index_task = progress.add_task("Indexing posts", total=n_posts)
        with write.begin() as conn:
            reindex(conn, lambda kind, done, total: progress.update(index_task, completed=done, total=total))
        timings["index_s"] = time.perf_counter() - t0
    if engine.dialect.name == "postgresql":
        vacuum_analyze_postgres(url, ["post", "search_document", "membership", "space", "user_account"])
    with engine.connect() as conn:
        in_mine = conn.scalar(select(func.count()).select_from(Post).where(Post.space_id.in_(mine)))
    return {"searcher_spaces": mine, "posts_in_searchers_spaces": in_mine, **timings}


QUERIES = {
    "common": ["walk", "sleep", "pain", "week", "morning", "water", "stress", "coach", "tired", "goal"],
    "rare": [],  # filled from the vocabulary's tail
    "two words": ["knee pain", "morning walk", "sleep tired", "blood pressure", "water walk", "coach advice"],
}


async def load(server: Server, clients: int, duration: float, warmup: float) -> dict:
    people = [("searcher@bench.test", PASSWORD, f"c{i}") for i in range(clients)]
    signed = await sign_in_all(server.base_url, people)
    tags = list(QUERIES)

    async def worker(recorder, client, index):
        for n in itertools.count(index):
            if not recorder.running:
                return
            tag = tags[n % len(tags)]
            terms = QUERIES[tag]
            q = terms[(n // len(tags)) % len(terms)]
            await recorder.request(client.light(), "GET", "/api/v1/search?" + urlencode({"q": q, "limit": 20}),
                                   tag=tag)

    try:
        result = await closed_loop(signed, worker, duration=duration, warmup=warmup, server=server)
    finally:
        for c in signed:
            await c.aclose()
    return summarise_load(result)


def profile(url: str, rounds: int = 5) -> dict:
    """The search itself, without HTTP: ``search.queries.search`` called one at a time, per kind of query."""
    from _common import percentile

    from peerlift.db import get_engine, transaction
    from peerlift.identity.models import User
    from peerlift.search.queries import search

    out = {}
    with transaction(get_engine(url), write=False) as s:
        searcher = s.query(User).filter(User.email == "searcher@bench.test").one()
        for tag, terms in QUERIES.items():
            times = []
            for _ in range(rounds):
                for q in terms:
                    t0 = time.perf_counter()
                    search(s, searcher, q, limit=20)
                    times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            out[tag] = {"calls": len(times), "p50_ms": percentile(times, 50), "p99_ms": percentile(times, 99)}
    release_engines()
    return out


def run_backend(backend: str, n_posts: int, args) -> dict:
    rng = random.Random(20261125)
    words, _ = _vocabulary(random.Random(20261125))
    QUERIES["rare"] = words[len(FUNCTION) + len(HEALTH) + 2_000:][:400:40]
    tmp = Path(tempfile.mkdtemp(prefix="peerlift-bench-search-"))
    base = postgres_base_url()
    url = sqlite_url(tmp) if backend == "sqlite" else reset_postgres_schema(base, SCHEMA)
    try:
        migrate(url)
        console.print(f"[bold]{backend}[/bold]: seeding {n_posts:,} posts …")
        seeded = seed(url, n_posts, rng)
        release_engines()
        console.print(f"  inserted in {seeded['insert_posts_s']:.0f} s, indexed in {seeded['index_s']:.0f} s; "
                      f"{seeded['posts_in_searchers_spaces']:,} posts in the searcher's "
                      f"{SEARCHER_SPACES} spaces")
        in_process = profile(url)
        server = (Balanced(url, log_dir=tmp / "processes", processes=args.processes, redis_url=args.redis_url)
                  if args.processes > 1 else Server(url, log_path=tmp / "server.log"))
        try:
            server.start()
            stats = run_async(load(server, args.clients, args.duration, args.warmup))
        finally:
            server.stop()
        return {"backend": backend, "posts": n_posts, "seed": seeded, "in_process": in_process, "load": stats}
    finally:
        release_engines()
        if backend == "postgresql":
            drop_postgres_schema(base, SCHEMA)
        shutil.rmtree(tmp, ignore_errors=True)  # the SQLite file of 1M posts is about 1 GB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--processes", type=int, default=1,
                        help="peerlift serve processes; more than one run behind nginx (least_conn) with Redis")
    parser.add_argument("--redis-url", default=os.environ.get("PEERLIFT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
                        help="Redis for several processes (default $PEERLIFT_BENCH_REDIS_URL, else database 14)")
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.quick:
        args.posts, args.duration, args.warmup = 20_000, 3.0, 1.0
    warn_if_busy()
    results = []
    for backend in args.backends.split(","):
        if backend == "postgresql" and (problem := postgres_problem(postgres_base_url())):
            console.print(f"[yellow]Skipping PostgreSQL:[/yellow] {problem}")
            continue
        try:
            results.append(run_backend(backend, args.posts, args))
        except Exception:  # noqa: BLE001 - report and go on with the next backend
            console.print(f"[red]{backend} failed:[/red]\n{traceback.format_exc()}")
    table = Table(title=f"Search: {args.posts:,} posts, {args.clients} concurrent clients (target p99 <= 100 ms)")
    for column in ("backend", "queries", "requests", "errors", "req/s", "p50 ms", "p99 ms", "server CPU"):
        table.add_column(column)
    for r in results:
        s = r["load"]
        rows = [("all", s)] + sorted(s.get("by_tag", {}).items())
        for tag, t in rows:
            table.add_row(r["backend"], tag, f"{t['requests']:,}", str(t["errors"]), f"{t['rps']:.0f}",
                          fmt_ms(t["p50_ms"]), fmt_ms(t["p99_ms"]),
                          f"{s['server_cpu_pct']:.0f} %" if tag == "all" and s.get("server_cpu_pct") else "")
    console.print(table)
    for r in results:
        console.print(f"{r['backend']}, one search at a time in-process (no HTTP): " + "; ".join(
            f"{tag} p50 {fmt_ms(v['p50_ms'])} ms, p99 {fmt_ms(v['p99_ms'])} ms" for tag, v in r["in_process"].items()))
    for r in results:
        verdict = "met" if r["load"]["p99_ms"] <= 100 else "NOT met"
        console.print(f"{r['backend']}: p99 {fmt_ms(r['load']['p99_ms'])} ms — target {verdict}.")
    path = write_results("search", {"machine": machine_info(), "args": vars(args), "results": results})
    console.print(f"Results: {path}")


if __name__ == "__main__":
    main()
