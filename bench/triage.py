"""Triage throughput: posts per second on one core, on the project's labelled sentences.

    python bench/triage.py [--seconds 3] [--runs 5]

The mix is the development set (risk-heavy: two thirds amber, red or crisis) and, separately, an
everyday mix in which nine posts in ten are ordinary. Prints the median of several runs.
Target: at least 2,000 posts per second per core.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from ruamel.yaml import YAML

from peerlift.safety.triage import load

DATA = Path(__file__).parents[1] / "tests" / "data"
TARGET = 2_000


def rate(lexicon, texts: list[str], seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for text in texts:
            lexicon.triage(text)
        done += len(texts)
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    lexicon = load()
    cases = YAML(typ="safe").load((DATA / "triage_eval.yaml").read_text())
    risky = [c["text"] for c in cases]
    green = [c["text"] for c in cases if c["level"] == "green"]
    everyday = green * 9 + risky[: len(green)]
    results: dict[str, list[float]] = {"risk-heavy mix": [], "everyday mix (9 in 10 green)": []}
    with Progress(console=console) as progress:
        task = progress.add_task("triage", total=args.runs * 2)
        for _ in range(args.runs):
            results["risk-heavy mix"].append(rate(lexicon, risky, args.seconds))
            progress.advance(task)
            results["everyday mix (9 in 10 green)"].append(rate(lexicon, everyday, args.seconds))
            progress.advance(task)
    for name, rates in results.items():
        median = statistics.median(rates)
        verdict = "met" if median >= TARGET else "MISSED"
        console.print(f"{name}: median {median:,.0f} posts/s per core over {args.runs} runs "
                      f"(min {min(rates):,.0f}, max {max(rates):,.0f}); target {TARGET:,}: {verdict}")


if __name__ == "__main__":
    main()
