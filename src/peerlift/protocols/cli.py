"""``peerlift protocol ...``: check, preview, schema, export, fidelity."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console

app = typer.Typer(help="Intervention protocol files: check, preview, export, fidelity.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _load_or_exit(path: Path):
    """The protocol in ``path``; otherwise its problems on stderr, FILE:LINE first, and exit 1."""
    from peerlift.protocols.loader import ProtocolInvalid, load

    try:
        return load(path)
    except ProtocolInvalid as exc:
        for line in exc.lines():
            err.print(line, markup=False)
        raise typer.Exit(1)


@app.command()
def check(files: Annotated[list[Path], typer.Argument(help="Protocol files (YAML)")]) -> None:
    """Exit 0 when every file is valid; otherwise print every problem as FILE:LINE: message and exit 1."""
    from peerlift.protocols.loader import ProtocolInvalid, load

    failed = False
    for path in files:
        try:
            protocol = load(path)
        except ProtocolInvalid as exc:
            failed = True
            for line in exc.lines():
                out.print(line, markup=False)
            continue
        out.print(f"{path}: ok ({protocol.id} {protocol.version}, {len(protocol.items)} items, "
                  f"{protocol.duration_days} days)", markup=False)
    raise typer.Exit(1 if failed else 0)


@app.command()
def preview(
    file: Annotated[Path, typer.Argument(help="A protocol file")],
    start: Annotated[str, typer.Option(help="The participant's start date, YYYY-MM-DD")],
    tz: Annotated[str, typer.Option(help="The participant's IANA time zone")],
    days: Annotated[int, typer.Option(help="How many days to show", min=1, max=3650)] = 14,
    format: Annotated[str, typer.Option(help="text or json")] = "text",
    name: Annotated[str, typer.Option(help="The participant's name, for {first_name}")] = "Sam Taylor",
) -> None:
    """One line per delivery: local date, local time, channel, item id, text."""
    from peerlift.protocols.preview import preview as build

    try:
        start_date = dt.date.fromisoformat(start)
    except ValueError:
        err.print(f"--start: {start!r} is not a date YYYY-MM-DD", markup=False)
        raise typer.Exit(2)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        err.print(f"--tz: unknown time zone {tz!r}; use an IANA name such as Europe/Berlin", markup=False)
        raise typer.Exit(2)
    if format not in ("text", "json"):
        err.print("--format: use text or json", markup=False)
        raise typer.Exit(2)
    protocol = _load_or_exit(file)
    lines = build(protocol, start_date, tz, days, name=name)
    if format == "json":
        out.print(json.dumps([line.__dict__ for line in lines], ensure_ascii=False, indent=1), markup=False)
    else:
        for line in lines:
            out.print(line.as_text(), markup=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the protocol format (for editors)."""
    from peerlift.protocols.format import PLACEHOLDERS, Protocol

    document = Protocol.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "peerlift protocol"
    document["description"] = ("An intervention protocol. Texts may use these placeholders: "
                               + "; ".join(f"{{{k}}}: {v}" for k, v in PLACEHOLDERS.items()))
    out.print(json.dumps(document, indent=2), markup=False)


@app.command()
def fhir(file: Annotated[Path, typer.Argument(help="A protocol file")]) -> None:
    """Print the protocol as an HL7 FHIR R4B Bundle (PlanDefinition + ActivityDefinitions)."""
    from peerlift.protocols.fhir import to_bundle

    protocol = _load_or_exit(file)
    out.print(to_bundle(protocol).model_dump_json(indent=2, exclude_none=True), markup=False)


@app.command()
def register(files: Annotated[list[Path], typer.Argument(help="Protocol files to register in the database")]) -> None:
    """Check and store protocol versions, so circles and arms can be assigned them."""
    from peerlift.db import transaction
    from peerlift.errors import PeerliftError
    from peerlift.protocols.service import register as do_register

    failed = False
    for path in files:
        try:
            with transaction() as session:
                version = do_register(session, path.read_text(encoding="utf-8"), None, str(path))
            out.print(f"{path}: registered as version id {version.id} ({version.protocol_key} {version.version})",
                      markup=False)
        except PeerliftError as exc:
            failed = True
            out.print(exc.message, markup=False)
    raise typer.Exit(1 if failed else 0)


@app.command()
def fidelity(
    circle: Annotated[int | None, typer.Option(help="A circle's id")] = None,
    arm: Annotated[int | None, typer.Option(help="An arm's id")] = None,
    format: Annotated[str, typer.Option(help="text or json")] = "text",
) -> None:
    """Planned versus delivered: on time, late (and why), skipped by their condition, failed."""
    from rich.table import Table

    from peerlift.db import transaction
    from peerlift.protocols.fidelity import report

    if (circle is None) == (arm is None):
        err.print("Give one of --circle ID or --arm ID.", markup=False)
        raise typer.Exit(2)
    with transaction(write=False) as session:
        result = report(session, circle_id=circle, arm_id=arm).as_dict()
    if format == "json":
        out.print(json.dumps(result, indent=1, default=str), markup=False)
        return
    table = Table(title=f"Fidelity of {'circle ' + str(circle) if circle else 'arm ' + str(arm)}: "
                        f"{', '.join(result['protocols']) or 'no protocol'}")
    columns = ("on_time", "late", "skipped", "failed", "overdue", "upcoming", "delivered_share")
    table.add_column("item", no_wrap=True, min_width=max([len(i) for i in result["by_item"]] + [5]))
    for column in columns:
        table.add_column({"delivered_share": "sent %"}.get(column, column.replace("_", " ")), justify="right")
    for item, counts in [*result["by_item"].items(), ("TOTAL", result["total"])]:
        table.add_row(item, *[("" if counts[c] is None else f"{counts[c]:.1%}") if c == "delivered_share"
                              else str(counts[c]) for c in columns])
    out.print(table)
    for late in result["late"][-20:]:
        out.print(f"late: {late['item_id']} for {late['person']} day {late['day']}: {late['reason']}", markup=False)
