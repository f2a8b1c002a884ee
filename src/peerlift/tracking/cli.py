"""``peerlift instruments ...``: list, score, check and upload questionnaires."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Validated questionnaires: list, score, check, upload.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
INT_RE = re.compile(r"^-?\d+$")


def _bands(inst) -> str:
    def one(bands) -> str:
        return ", ".join(f"{b.key} {b.min}-{b.max}" if b.min != b.max else f"{b.key} {b.min}" for b in bands)

    if isinstance(inst.bands, list):
        return one(inst.bands)
    return "; ".join(f"{value}: {one(bands)}" for value, bands in inst.bands.items())


@app.command("list")
def list_instruments() -> None:
    """The shipped instruments: key, name, items, score range, bands."""
    from peerlift.tracking.instruments import shipped

    for inst in shipped().values():
        low, high = inst.score_range
        extra = f"; by {inst.bands_by}" if inst.bands_by else ""
        typer.echo(f"{inst.key}\t{inst.name}\t{len(inst.scored_items)} items\tscore {low}-{high}"
                  f"{' (percentage x' + str(inst.scoring.percentage_factor) + ')' if inst.scoring.percentage_factor else ''}"
                   f"\tbands: {_bands(inst)}{extra}")


@app.command()
def score(
    name: Annotated[str, typer.Argument(help="Instrument key, e.g. phq9")],
    answers: Annotated[list[str] | None, typer.Argument(help="The score of each answer, in order")] = None,
    sex: Annotated[str | None, typer.Option(help="male or female (AUDIT-C)")] = None,
) -> None:
    """Print one JSON object: instrument, total, band, alerts (and percentage for WHO-5)."""
    from peerlift.errors import PeerliftError
    from peerlift.tracking.scoring import score_shipped

    values: list = []
    for n, raw in enumerate(answers or []):
        if not INT_RE.match(raw.strip()):
            err.print(f"answer {n + 1}: {raw!r} is not a whole number", markup=False)
            raise typer.Exit(2)
        values.append(int(raw))
    context = {"sex": sex} if sex is not None else None
    try:
        result = score_shipped(name, values, context)
    except PeerliftError as exc:
        err.print(f"{exc.field or 'error'}: {exc.message}", markup=False)
        raise typer.Exit(2)
    typer.echo(json.dumps(result.as_dict()))


@app.command()
def check(files: Annotated[list[Path], typer.Argument(help="Instrument files (YAML)")]) -> None:
    """Exit 0 when every file is valid; otherwise print each problem as FILE:LINE: message and exit 1."""
    from peerlift.tracking.instruments import InstrumentInvalid, parse

    failed = False
    for path in files:
        try:
            inst = parse(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            failed = True
            out.print(f"{path}:1: cannot read the file: {exc}", markup=False)
            continue
        except InstrumentInvalid as exc:
            failed = True
            for line in exc.lines():
                out.print(line, markup=False)
            continue
        low, high = inst.score_range
        out.print(f"{path}: ok ({inst.key} {inst.version}, {len(inst.items)} items, score {low}-{high})",
                  markup=False)
    raise typer.Exit(1 if failed else 0)


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(help="An instrument file (YAML)")],
    as_user: Annotated[str, typer.Option("--as", help="Email of the researcher or admin uploading it")],
) -> None:
    """Store a researcher's questionnaire in the database (checked first)."""
    from sqlalchemy import select

    from peerlift.db import transaction
    from peerlift.errors import PeerliftError
    from peerlift.identity.models import User
    from peerlift.tracking.service import upload_instrument

    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"{file}: cannot read the file: {exc}", markup=False)
        raise typer.Exit(1)
    try:
        with transaction() as session:
            actor = session.scalar(select(User).where(User.email == as_user.strip().lower()))
            if actor is None:
                err.print(f"--as: no account {as_user!r}", markup=False)
                raise typer.Exit(1)
            row = upload_instrument(session, actor, source, str(file))
            key, version = row.key, row.version
    except PeerliftError as exc:
        for line in exc.message.split("; "):
            err.print(line, markup=False)
        raise typer.Exit(1)
    out.print(f"Uploaded {key} version {version}.", markup=False)
