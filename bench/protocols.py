"""Compile a 100-day protocol for 20,000 participants in 20 time zones.

    python bench/protocols.py [--participants 20000] [--horizons 2,14,100] [--protocol FILE]

Each horizon runs in a fresh process (so peak memory is that run's own): every participant's
deliveries over the horizon are computed in their local time (daylight saving included) and
folded into a checksum, as the planner does before writing them. Prints time, deliveries per
second and peak resident memory per horizon. Target: the full 100 days for 20,000 participants in
<= 60 s, with peak memory that does not grow with the horizon.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ZONES = ["Europe/London", "Europe/Berlin", "Europe/Madrid", "Europe/Helsinki", "America/New_York",
         "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo", "America/Toronto",
         "Australia/Sydney", "Australia/Perth", "Pacific/Auckland", "Asia/Tokyo", "Asia/Kolkata",
         "Asia/Singapore", "Africa/Johannesburg", "Africa/Lagos", "America/Mexico_City", "Asia/Dubai"]


def run_one(protocol_file: str, participants: int, horizon: int) -> dict:
    from peerlift.protocols.loader import load
    from peerlift.protocols.schedule import occurrences

    protocol = load(protocol_file)
    base = dt.date(2026, 3, 2)  # the window crosses the northern spring change and the southern autumn one
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    count, checksum = 0, 0
    for n in range(participants):
        start = base + dt.timedelta(days=n % 14)
        for occ in occurrences(protocol, start, ZONES[n % len(ZONES)], last_day=horizon):
            count += 1
            checksum ^= int(occ.due_at.timestamp()) + occ.day
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"horizon_days": horizon, "participants": participants, "deliveries": count, "seconds": round(seconds, 2),
            "per_second": round(count / seconds), "peak_rss_mb": round(peak / 1024, 1),
            "growth_mb": round((peak - rss_before) / 1024, 1), "checksum": checksum}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument("--horizons", default="2,14,100")
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "smoking-cessation-tweet2quit.yaml"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.protocol, args.participants, args.one)))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    results = []
    with console.status("compiling") as status:
        for horizon in (int(h) for h in args.horizons.split(",")):
            status.update(f"compiling {horizon} days for {args.participants:,} participants")
            out = subprocess.run([sys.executable, __file__, "--one", str(horizon), "--participants",
                                  str(args.participants), "--protocol", args.protocol],
                                 check=True, capture_output=True, text=True).stdout
            results.append(json.loads(out))
    table = Table(title=f"Protocol compile: {Path(args.protocol).name}, {args.participants:,} participants, "
                        f"{len(ZONES)} time zones")
    for column in ("horizon days", "deliveries", "seconds", "deliveries/s", "peak RSS MB", "growth MB"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(str(r["horizon_days"]), f"{r['deliveries']:,}", f"{r['seconds']:.2f}", f"{r['per_second']:,}",
                      f"{r['peak_rss_mb']:.1f}", f"{r['growth_mb']:.1f}")
    console.print(table)
    full = max(results, key=lambda r: r["horizon_days"])
    small = min(results, key=lambda r: r["horizon_days"])
    console.print(f"target: full horizon in <= 60 s: {'met' if full['seconds'] <= 60 else 'MISSED'} "
                  f"({full['seconds']:.1f} s); peak memory flat across horizons: "
                  f"{'met' if full['peak_rss_mb'] <= small['peak_rss_mb'] * 1.1 + 5 else 'MISSED'} "
                  f"({small['peak_rss_mb']:.1f} MB at {small['horizon_days']} days, "
                  f"{full['peak_rss_mb']:.1f} MB at {full['horizon_days']} days)")
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"protocols-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
