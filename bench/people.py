"""People-like-me benchmark: suggestions for one person among 100,000 health profiles.

    .venv/bin/python bench/people.py                 # SQLite, and PostgreSQL when it answers
    .venv/bin/python bench/people.py --quick         # 10,000 profiles, a smoke run
    .venv/bin/python bench/people.py --backend sqlite

A database migrated to head gets N synthetic people (default 100,000): 1-3 conditions each from
60 condition groups with a skewed popularity (the most common is held by about a fifth of
people), 0-3 medicines from 80, at most one goal from 12, an age band, a visibility per field
(mostly shared with anyone signed in or with communities), 70 % opted in to suggestions and 5 %
of those hidden. A third of them are in circles of 12 and a quarter in one of 40 open
communities. Their rows of the matching index (``profile_code``) are written as the product
writes them (``people.service.match_keys``, only suggestable people, only shared fields).

Then, for 200 opted-in people picked at random, what ``GET /api/v1/people/like-me`` does
in process (members and communities, both sides' visibility, reasons): the median and p99
times. Target: <= 200 ms for both.

Results go to bench/results/people-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rich.table import Table  # noqa: E402

from _common import (  # noqa: E402
    console,
    drop_postgres_schema,
    fmt_ms,
    machine_info,
    migrate,
    percentile,
    postgres_base_url,
    postgres_problem,
    release_engines,
    reset_postgres_schema,
    sqlite_url,
    sync_postgres_sequences,
    vacuum_analyze_postgres,
    warn_if_busy,
    write_results,
)

TARGET_MS = 200.0
SAMPLES = 200
VISIBILITIES = ["installation"] * 5 + ["my_communities"] * 3 + ["my_circles"] * 2 + ["only_me"] * 2
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75+")
GOALS = ["lose 5%", "walk daily", "quit smoking", "sleep better", "cut down alcohol", "eat more vegetables",
         "manage stress", "lower my blood pressure", "get my hba1c under 48", "swim weekly", "stretch daily",
         "less screen time"]


def _skewed(rng: random.Random, items: list[str]) -> str:
    """A pick where item i is about 1/(i+1) as likely as the first (a Zipf-like popularity)."""
    weights = [1 / (i + 1) for i in range(len(items))]
    return rng.choices(items, weights)[0]


def build(url: str, n: int, seed: int = 11) -> float:
    from sqlalchemy import create_engine, insert

    from peerlift.community.models import Membership, Space, SpaceKind
    from peerlift.identity.models import User
    from peerlift.people import codes
    from peerlift.people.models import HealthProfile, ProfileCode
    from peerlift.people.service import match_keys

    rng = random.Random(seed)
    groups = sorted({codes.group(c.code).code for c in codes.conditions().entries})
    rng.shuffle(groups)
    conditions = [c for c in codes.conditions().entries if codes.group(c.code).code in set(groups[:60])]
    by_group: dict[str, list[str]] = {}
    for c in conditions:
        by_group.setdefault(codes.group(c.code).code, []).append(c.code)
    group_list = list(by_group)
    medicines = [m.code for m in codes.medicines().entries][:80]
    started = time.perf_counter()
    engine = create_engine(url)
    now = __import__("datetime").datetime.now(__import__("datetime").UTC)
    users, profiles, index, spaces, members = [], [], [], [], []
    for i in range(1, n + 1):
        users.append({"id": i, "email": f"p{i}@bench.test", "handle": f"p{i}", "password_hash": "x",
                      "display_name": f"Person {i}", "pronouns": "", "bio": "", "timezone": "Europe/London",
                      "role": "participant", "is_active": True, "created_at": now})
        chosen = {_skewed(rng, group_list) for _ in range(rng.randint(1, 3))}
        conds = [{"code": rng.choice(by_group[g]), "text": "", "year": rng.randint(1990, 2025)} for g in chosen]
        meds = [{"code": _skewed(rng, medicines), "text": ""} for _ in range(rng.randint(0, 3))]
        goals = [rng.choice(GOALS)] if rng.random() < 0.6 else []
        vis = {f: rng.choice(VISIBILITIES) for f in ("conditions", "treatments", "goals", "diagnosis_years",
                                                      "age_band")}
        suggest, hidden = rng.random() < 0.7, rng.random() < 0.05
        row = {"user_id": i, "conditions": conds, "treatments": meds, "goals": goals,
               "age_band": rng.choice(AGE_BANDS), "suggest_me": suggest, "hidden": hidden, "updated_at": now,
               **{f"{f}_visibility": v for f, v in vis.items()}}
        profiles.append(row)
        if suggest and not hidden:
            for key, name in match_keys(SimpleNamespace(**row)):
                if vis[name] != "only_me":
                    index.append({"user_id": i, "key": key, "field": name, "visibility": vis[name]})
    n_circles = max(1, n // 36)
    for c in range(1, n_circles + 41):
        spaces.append({"id": c, "kind": (SpaceKind.circle if c <= n_circles else SpaceKind.community).name,
                       "name": f"Space {c}" if c <= n_circles else f"Living with {rng.choice(conditions).name}",
                       "description": "", "rules": "", "timezone": "Europe/London", "allow_member_dms": False,
                       "premoderated": False, "created_at": now})
    people = list(range(1, n + 1))
    rng.shuffle(people)
    for k, person in enumerate(people[: n // 3]):
        members.append({"space_id": 1 + k // 12, "user_id": person})
    for person in people[n // 3: n // 3 + n // 4]:
        members.append({"space_id": n_circles + 1 + rng.randrange(40), "user_id": person})
    for m in members:
        m.update({"role": "member", "joined_at": now, "last_read_post_id": 0, "gated": False})
    with engine.begin() as conn:
        for model, rows in ((User, users), (HealthProfile, profiles), (ProfileCode, index), (Space, spaces),
                            (Membership, members)):
            for i in range(0, len(rows), 5000):
                conn.execute(insert(model.__table__), rows[i:i + 5000])
        sync_postgres_sequences(conn, ["user_account", "space"])
    engine.dispose()
    console.print(f"  {n:,} people, {len(index):,} index rows, {len(members):,} memberships "
                  f"in {time.perf_counter() - started:.1f} s")
    return time.perf_counter() - started


def measure(n: int, samples: int, seed: int = 5) -> dict:
    from sqlalchemy import select

    from peerlift import db as dbmod
    from peerlift.identity.models import User
    from peerlift.people import service
    from peerlift.people.models import HealthProfile

    rng = random.Random(seed)
    with dbmod.transaction(write=False) as s:
        ids = s.scalars(select(HealthProfile.user_id).where(HealthProfile.suggest_me.is_(True),
                                                            HealthProfile.hidden.is_(False))).all()
    chosen = rng.sample(ids, min(samples, len(ids)))
    times, counts = [], []
    for uid in chosen[:5]:  # warm-up: caches and the planner
        with dbmod.transaction(write=False) as s:
            service.like_me(s, s.get(User, uid))
    for uid in chosen:
        started = time.perf_counter()
        with dbmod.transaction(write=False) as s:
            user = s.get(User, uid)
            found = service.like_me(s, user)
            service.communities_like_me(s, user)
        times.append((time.perf_counter() - started) * 1000)
        counts.append(len(found))
    times.sort()
    return {"samples": len(times), "median_ms": statistics.median(times), "p99_ms": percentile(times, 99),
            "max_ms": times[-1], "mean_suggestions": statistics.mean(counts)}


def run(backend: str, n: int, samples: int) -> dict | None:
    from peerlift.settings import get_settings

    tmp = tempfile.TemporaryDirectory(prefix="peerlift-bench-people-")
    if backend == "sqlite":
        url = sqlite_url(Path(tmp.name))
    else:
        problem = postgres_problem(postgres_base_url())
        if problem:
            console.print(f"[yellow]PostgreSQL skipped: {problem}[/]")
            return None
        url = reset_postgres_schema(postgres_base_url(), "bench_people")
    try:
        os.environ["PEERLIFT_DATABASE_URL"] = url
        get_settings.cache_clear()
        release_engines()
        console.print(f"[bold]{backend}[/]: building")
        migrate(url)
        build_seconds = build(url, n)
        if backend == "postgresql":
            vacuum_analyze_postgres(url, ["profile_code", "health_profile", "membership", "user_account", "space"])
        result = measure(n, samples)
        result.update(backend=backend, people=n, build_seconds=build_seconds)
        return result
    finally:
        release_engines()
        if backend == "postgresql":
            drop_postgres_schema(postgres_base_url(), "bench_people")
        tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 10_000 if args.quick else args.people
    warn_if_busy()
    results = []
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        result = run(backend, n, args.samples)
        if result:
            results.append(result)
    table = Table(title=f"People like me, {n:,} profiles (target <= {TARGET_MS:.0f} ms)")
    for column in ("backend", "samples", "median", "p99", "max", "suggestions", "verdict"):
        table.add_column(column)
    for r in results:
        ok = r["median_ms"] <= TARGET_MS and r["p99_ms"] <= TARGET_MS
        table.add_row(r["backend"], str(r["samples"]), fmt_ms(r["median_ms"]), fmt_ms(r["p99_ms"]),
                      fmt_ms(r["max_ms"]), f"{r['mean_suggestions']:.1f}", "[green]ok[/]" if ok else "[red]SLOW[/]")
    console.print(table)
    path = write_results("people", {"machine": machine_info(), "results": results})
    console.print(f"results: {path}")


if __name__ == "__main__":
    main()
