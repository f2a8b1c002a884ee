"""``peerlift cues ...``: check rule files, list the rules in force."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Just-in-time cue rules: check files, list the rules in force.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)


@app.command()
def check(files: Annotated[list[Path], typer.Argument(help="Cue rule files, or protocol files with cues (YAML)")]) -> None:
    """Exit 0 when every file is valid; otherwise print every problem as FILE:LINE: message and exit 1."""
    from peerlift.cues.loader import RulesInvalid, load
    from peerlift.protocols.loader import ProtocolInvalid
    from peerlift.protocols.loader import load as load_protocol

    failed = False
    for path in files:
        try:
            if _is_protocol(path):
                protocol = load_protocol(path)
                out.print(f"{path}: ok (protocol {protocol.id} {protocol.version}, "
                          f"{len(protocol.cues or [])} cues)", markup=False)
                continue
            ruleset = load(path)
        except (RulesInvalid, ProtocolInvalid) as exc:
            failed = True
            for line in exc.lines():
                out.print(line, markup=False)
            continue
        out.print(f"{path}: ok ({ruleset.key} {ruleset.version}, {len(ruleset.rules)} cues)", markup=False)
    raise typer.Exit(1 if failed else 0)


def _is_protocol(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.startswith("items:") for line in text.splitlines())


@app.command("list")
def list_rules(
    database: Annotated[bool, typer.Option(help="Also list the cues of protocols running in circles")] = True,
) -> None:
    """The rules in force: the shipped defaults, PEERLIFT_CUE_FILES, and the cues of running protocols."""
    from peerlift.cues.engine import global_rulesets

    sets = [(r, "every circle") for r in global_rulesets()]
    if database:
        sets += _protocol_sets()
    if not sets:
        out.print("No cue rules are in force.", markup=False)
    for ruleset, scope in sets:
        out.print(f"{ruleset.key} {ruleset.version} ({scope})", markup=False)
        for rule in ruleset.rules:
            r = rule.rule
            trigger = ", ".join(f"{k}: {v}" for k, v in r.trigger.model_dump(exclude_none=True).items())
            extra = f"; randomise {r.randomise:g}" if r.randomise is not None else ""
            out.print(f"  {r.id}: when {trigger}" + (f" if {r.condition}" if r.condition else "")
                      + f" -> {r.action.kind}; cool-down {r.cooldown or '1 day'}{extra}", markup=False)


def _protocol_sets() -> list:
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from peerlift.cues.engine import protocol_ruleset
    from peerlift.db import transaction
    from peerlift.protocols.models import Assignment, AssignmentStatus, ProtocolVersion

    found = []
    try:
        with transaction(write=False) as session:
            rows = session.execute(select(ProtocolVersion, Assignment.space_id).join(
                Assignment, Assignment.protocol_version_id == ProtocolVersion.id).where(
                Assignment.status == AssignmentStatus.active)).all()
            by_version: dict[int, tuple] = {}
            for version, space_id in rows:
                by_version.setdefault(version.id, (version, []))[1].append(space_id)
            for version, circles in by_version.values():
                ruleset = protocol_ruleset(version.sha256, version.source) if "cues" in version.source else None
                if ruleset is not None:
                    found.append((ruleset, "circles " + ", ".join(str(c) for c in sorted(circles))))
    except SQLAlchemyError as exc:
        out.print(f"(the database could not be read for protocol cues: {exc.__class__.__name__})", markup=False)
    return found
