"""``peerlift safety ...``: triage a text, evaluate the triage on a labelled set, check for PII."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from peerlift.safety.model import MAX_ADDED_FALSE_ALARM

app = typer.Typer(help="Risk triage and personal-information checks.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _lexicon():
    from peerlift.safety.triage import LexiconError, default_lexicon

    try:
        return default_lexicon()
    except LexiconError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1)


@app.command()
def triage(text: Annotated[str, typer.Argument(help="The text to triage")]) -> None:
    """Print one JSON object: {"level": "green|amber|red|crisis", "reasons": [...]}."""
    result = _lexicon().triage(text)
    print(json.dumps({"level": result.level, "reasons": [r.describe() for r in result.reasons],
                      "emergency": result.emergency}, ensure_ascii=False))


@app.command()
def evaluate(path: Annotated[Path, typer.Argument(help="YAML list of {text, level} cases")],
             as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON")] = False,
             misses: Annotated[bool, typer.Option("--misses", help="List the cases triaged wrongly")] = False) -> None:
    """Recall, precision and false-alarm rate per level, and the confusion matrix."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from peerlift.safety.triage import LEVELS, evaluate as run

    try:
        cases = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, YAMLError) as exc:
        err.print(f"{path}: cannot read the cases ({exc})", markup=False)
        raise typer.Exit(1)
    if isinstance(cases, dict):
        cases = cases.get("cases")
    problems = [f"{path}: case {i + 1}: needs text and a level (one of {', '.join(LEVELS)})"
                for i, c in enumerate(cases or []) if not isinstance(c, dict) or not isinstance(c.get("text"), str)
                or c.get("level") not in LEVELS]
    if not cases or problems:
        err.print("\n".join(problems) or f"{path}: no cases", markup=False)
        raise typer.Exit(1)
    result = run(cases, _lexicon())
    if as_json:
        print(json.dumps({**result.as_dict(), **({"misses": result.misses} if misses else {})}, indent=2))
        return
    table = Table(title=f"Triage on {path.name} ({result.total} cases)")
    for col in ("level", "n", "recall", "precision", "false-alarm rate"):
        table.add_column(col, justify="right" if col != "level" else "left")
    for level in LEVELS:
        m = result.per_level[level]
        table.add_row(level, str(m["n"]), f"{m['recall']:.3f}", f"{m['precision']:.3f}", f"{m['false_alarm_rate']:.3f}")
    out.print(table)
    matrix = Table(title="Confusion matrix (rows: expected, columns: triaged)")
    matrix.add_column("expected")
    for level in LEVELS:
        matrix.add_column(level, justify="right")
    for level in LEVELS:
        matrix.add_row(level, *(str(result.confusion[level][p]) for p in LEVELS))
    out.print(matrix)
    out.print(f"red+crisis recall (triaged red or crisis): {result.raised_recall:.3f}")
    out.print(f"green sentences raised to red or crisis: {result.false_alarm_ordinary:.3f}")
    if misses:
        for m in result.misses:
            out.print(f"  expected {m['expected']}, triaged {m['got']}: {m['text']}", markup=False)


@app.command("personal-information")
def personal_information(text: Annotated[str, typer.Argument(help="The text to check")]) -> None:
    """Print the phone numbers, emails, street addresses and full names found, as JSON."""
    from peerlift.safety import pii

    found = pii.find(text)
    print(json.dumps({"findings": [f.as_dict() for f in found], "scrubbed": pii.scrub(text)}, ensure_ascii=False))


@app.command()
def train(paths: Annotated[list[Path], typer.Argument(help="YAML lists of {text, level} cases")],
          out: Annotated[Path, typer.Option("--out", help="Where to write the model (JSON)")],
          max_added_false_alarm: Annotated[float, typer.Option(
              help="Most green cases of a file the model may raise to red on top of the rules, on average, "
                   "judged on files it was not trained on")] = MAX_ADDED_FALSE_ALARM) -> None:
    """Train the learned second opinion on labelled sentences (needs scikit-learn: pip install
    'peerlift[train]'). The threshold is chosen by cross-validation that leaves one file out at a time
    (each file is one author's writing), so it holds for writing the model has never read."""
    from ruamel.yaml import YAML

    from peerlift.safety.triage import LEVELS, load

    try:
        from peerlift.safety.model import cross_validation_folds, train as fit
        import sklearn  # noqa: F401
    except ImportError:
        err.print("Training needs scikit-learn: pip install 'peerlift[train]'", markup=False)
        raise typer.Exit(1)
    cases: list[dict] = []
    groups: list[str] = []
    for path in paths:
        try:
            loaded = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            err.print(f"{path}: cannot read ({exc.strerror})", markup=False)
            raise typer.Exit(1)
        bad = [i + 1 for i, c in enumerate(loaded or []) if not isinstance(c, dict) or c.get("level") not in LEVELS
               or not isinstance(c.get("text"), str)]
        if not loaded or bad:
            err.print(f"{path}: case {bad[0] if bad else 1}: needs text and a level", markup=False)
            raise typer.Exit(1)
        cases += loaded
        groups += [str(path)] * len(loaded)
    rules = load()  # rules alone: the model is the second opinion to them
    with Progress(*Progress.get_default_columns(), console=err, transient=True) as bar:
        task = bar.add_task("cross-validating", total=len(cross_validation_folds(len(cases), groups)))
        try:
            data, figures = fit(cases, rules_level=lambda text: rules.triage(text).level,
                                max_added_false_alarm=max_added_false_alarm, groups=groups,
                                progress=lambda: bar.advance(task))
        except ValueError as exc:
            err.print(str(exc), markup=False)
            raise typer.Exit(1)
    data["about"]["files"] = [p.name for p in paths]
    out.write_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False), encoding="utf-8")
    print(json.dumps(figures, indent=2))
