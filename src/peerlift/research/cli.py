"""``peerlift report`` and ``peerlift export``: a study's report, and its data for analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

console = Console()


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console, transient=True)


def _fail(exc) -> None:
    console.print(f"[red]{exc.field or 'error'}:[/red] {exc.message}", soft_wrap=True)
    raise typer.Exit(1)


def export(
    study: Annotated[str, typer.Option("--study", help="Study slug or id")],
    format: Annotated[str, typer.Option("--format", help="csv, parquet, fhir or dprp")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write (created; must be empty unless --force)")],
    force: Annotated[bool, typer.Option(help="Replace a folder that is not empty")] = False,
    free_text: Annotated[bool, typer.Option("--free-text/--no-free-text",
                                            help="Export free text (scrubbed of personal information) or leave it out")] = True,
    arm: Annotated[str | None, typer.Option(help="DPRP: the lifestyle-change arm's slug")] = None,
) -> None:
    """Export a study's consented, randomised participants' data: pseudonymised, with a manifest."""
    from peerlift.db import transaction
    from peerlift.errors import PeerliftError
    from peerlift.research.export import BUILDERS, export as do_export

    from peerlift.cli import _settings

    _settings()
    total = len(BUILDERS) if format in ("csv", "parquet") else 1
    try:
        with _progress() as bar, transaction() as session:
            task = bar.add_task(f"Exporting {study} as {format}", total=total)

            def step(what: str) -> None:
                bar.update(task, description=f"Exporting {what}", advance=0)
                bar.advance(task)

            manifest = do_export(session, study, format, out, force=force, free_text=free_text, arm=arm,
                                 progress=step)
    except PeerliftError as exc:
        _fail(exc)
    rows = sum(f["rows"] or 0 for f in manifest["files"])
    console.print(f"Exported {manifest['study']['slug']} as {format} to {out}: {len(manifest['files'])} files, "
                  f"{rows} rows (manifest.json lists each file's rows and sha256).")


def report(
    study: Annotated[str, typer.Option("--study", help="Study slug or id")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write report.html (and report.pdf) into")],
    pdf: Annotated[bool, typer.Option(help="Also print the report to PDF when Chromium is installed")] = True,
) -> None:
    """Write the study report: CONSORT flow, engagement, retention, fidelity, cost and safety."""
    from peerlift.db import transaction
    from peerlift.errors import PeerliftError
    from peerlift.research.report import STEPS, write_report

    from peerlift.cli import _settings

    _settings()
    try:
        with _progress() as bar, transaction() as session:
            task = bar.add_task(f"Report of {study}", total=len(STEPS))

            def step(what: str) -> None:
                bar.update(task, description=what)
                bar.advance(task)

            written = write_report(session, study, out, pdf=pdf, progress=step)
    except PeerliftError as exc:
        _fail(exc)
    for path in written:
        console.print(f"Wrote {path}")
    if pdf and not any(p.suffix == ".pdf" for p in written):
        console.print("No PDF: Chromium (chromium or chromium-browser) is not installed; the HTML prints well.")
