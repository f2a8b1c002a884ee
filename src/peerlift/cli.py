"""The ``peerlift`` command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

# A live stream never ends by itself: on SIGTERM, requests in flight get this long to finish, then
# the streams are closed and their clients reconnect (with Last-Event-ID) to another process.
SHUTDOWN_GRACE_SECONDS = 5
# An idle keep-alive connection is closed after this long; a proxy keeping connections to peerlift
# open must give them up sooner (nginx: keepalive_timeout in the upstream block, deploy/nginx).
KEEP_ALIVE_SECONDS = 5

app = typer.Typer(help="peerlift: private peer circles for health programmes.", no_args_is_help=True)
console = Console()


def _protocol_app() -> typer.Typer:
    from peerlift.protocols.cli import app as protocol_app

    return protocol_app


app.add_typer(_protocol_app(), name="protocol")


def _safety_app() -> typer.Typer:
    from peerlift.safety.cli import app as safety_app

    return safety_app


app.add_typer(_safety_app(), name="safety")


def _instruments_app() -> typer.Typer:
    from peerlift.tracking.cli import app as instruments_app

    return instruments_app


app.add_typer(_instruments_app(), name="instruments")


def _cues_app() -> typer.Typer:
    from peerlift.cues.cli import app as cues_app

    return cues_app


app.add_typer(_cues_app(), name="cues")


def _search_app() -> typer.Typer:
    from peerlift.search.cli import app as search_app

    return search_app


app.add_typer(_search_app(), name="search")


def _research_commands() -> None:
    from peerlift.research import cli as research_cli

    app.command("report")(research_cli.report)
    app.command("export")(research_cli.export)


_research_commands()


def _settings():
    from peerlift.settings import get_settings

    try:
        return get_settings()
    except Exception as exc:  # pydantic's ValidationError names the setting
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2)


def _check_cue_files(settings) -> None:
    """PEERLIFT_CUE_FILES must name readable, valid rule files before anything runs them."""
    from peerlift.cues.loader import RulesInvalid, load

    for path in settings.cue_paths:
        try:
            load(path)
        except RulesInvalid as exc:
            console.print("[red]Configuration error:[/red] PEERLIFT_CUE_FILES names a file with problems:")
            for line in exc.lines():
                console.print(line, markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2)


@app.command()
def migrate() -> None:
    """Bring the database to the newest schema (Alembic)."""
    from peerlift.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    console.print(f"Database is up to date ({_safe_url(settings.database_url)}).")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Serving processes (more than one needs PEERLIFT_REDIS_URL)")] = 1,
    scheduler: Annotated[bool, typer.Option(help="Run a scheduler worker in this process")] = True,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        help="Proxies trusted for X-Forwarded-For/-Proto: addresses or networks, comma-separated, or *"
             " (default: PEERLIFT_FORWARDED_ALLOW_IPS)")] = None,
) -> None:
    """Serve the web app, the JSON API and the live stream."""
    import uvicorn

    if not scheduler:
        os.environ["PEERLIFT_RUN_WORKER"] = "false"
    if forwarded_allow_ips is not None:
        os.environ["PEERLIFT_FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    settings = _settings()
    _check_cue_files(settings)
    if workers > 1 and not settings.redis_url:
        console.print("[red]Several processes need PEERLIFT_REDIS_URL, so live events reach every stream.[/red]")
        raise typer.Exit(2)
    uvicorn.run("peerlift.app:create_app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips,
                timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                log_level="info", access_log=settings.access_log)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker threads in this process")] = 1,
    batch: Annotated[int, typer.Option(help="Rows claimed per transaction")] = 500,
    once: Annotated[bool, typer.Option(help="Run until nothing is due, then exit")] = False,
) -> None:
    """Run scheduler workers: claim due deliveries and perform them."""
    import logging

    from peerlift.delivery.dispatch import Announcer
    from peerlift.delivery.scheduler import Worker

    settings = _settings()
    _check_cue_files(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    workers = [Worker(batch=batch) for _ in range(concurrency)]
    # What the workers deliver (notifications, prompts, circle posts) reaches the streams held by
    # the serving processes through Redis, as their own events do.
    announcer = None
    if settings.redis_url:
        announcer = Announcer()
        try:
            announcer.start(settings.redis_url)
        except Exception as exc:  # noqa: BLE001 - redis' own errors name the address
            console.print(f"[red]PEERLIFT_REDIS_URL: Redis cannot be reached:[/red] {exc}")
            raise typer.Exit(2)
    elif not settings.database_url.startswith("sqlite"):
        console.print("[yellow]PEERLIFT_REDIS_URL is unset:[/yellow] what this worker delivers reaches open "
                      "streams only with the next event of a serving process.")
    try:
        _work(workers, once=once, concurrency=concurrency)
    finally:
        if announcer is not None:
            announcer.stop()


def _work(workers: list, *, once: bool, concurrency: int) -> None:
    import signal
    import threading

    if once:
        total = 0
        while (took := sum(w.run_once() for w in workers)) > 0:
            total += took
        console.print(f"Delivered or retried {total} due items.")
        return
    threads = [threading.Thread(target=w.run_forever, daemon=True) for w in workers]
    for t in threads:
        t.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(f"{concurrency} worker(s) running; Ctrl-C to stop.")
    stop.wait()
    for w in workers:
        w.stop()
    for t in threads:
        t.join(timeout=10)


@app.command()
def seed() -> None:
    """Seed the demo study unless it exists."""
    from peerlift.db import transaction
    from peerlift.demo.seed import seed as seed_demo

    _settings()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True) as bar:
        task = bar.add_task("Seeding the demo study", total=None)
        with transaction() as session:
            wrote = seed_demo(session, progress=lambda what: bar.update(task, description=f"Seeding {what}"))
    console.print("Demo study seeded." if wrote else "The demo study exists already; nothing to do.")


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to serve on")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
) -> None:
    """Migrate, seed the demo study (once) and serve it."""
    from peerlift.demo.seed import PASSWORD, logins

    os.environ.setdefault("PEERLIFT_BASE_URL", f"http://{host}:{port}")
    # The printed logins sign in with the password alone: the demo does not require two-factor
    # sign-in of any role (anyone may still set it up), unless PEERLIFT_TWO_FACTOR_ROLES says otherwise.
    os.environ.setdefault("PEERLIFT_TWO_FACTOR_ROLES", "")
    _settings().__class__  # validate early
    migrate()
    seed()
    table = Table(title=f"peerlift demo on http://{host}:{port}  (every password: {PASSWORD})")
    table.add_column("email")
    table.add_column("role")
    for email, role in logins():
        table.add_row(email, role)
    console.print(table)
    if not _settings().two_factor_role_set:
        console.print("Two-factor sign-in is optional for every role in this demo (PEERLIFT_TWO_FACTOR_ROLES).")
    serve(host=host, port=port, workers=1)


@app.command("create-user")
def create_user(
    email: str,
    display_name: Annotated[str, typer.Option(help="Name shown to others")],
    role: Annotated[str, typer.Option(help="participant, facilitator, clinician, researcher or admin")] = "admin",
    timezone: Annotated[str, typer.Option(help="IANA time zone")] = "Europe/London",
) -> None:
    """Create an account; the password is asked for, never taken from the command line."""
    from peerlift.db import transaction
    from peerlift.errors import PeerliftError
    from peerlift.identity.models import Role
    from peerlift.identity.service import create_user as do_create

    _settings()
    try:
        role_value = Role(role)
    except ValueError:
        console.print(f"[red]Unknown role {role!r}[/red]; use one of: {', '.join(r.value for r in Role)}")
        raise typer.Exit(2)
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with transaction() as session:
            user = do_create(session, email=email, password=password, display_name=display_name,
                             role=role_value, timezone=timezone)
    except PeerliftError as exc:
        console.print(f"[red]{exc.field or 'error'}:[/red] {exc.message}")
        raise typer.Exit(1)
    console.print(f"Created {user.email} ({user.role.value}).")


def _table_progress():
    """A rich Progress and a tracker for peerlift.backup: one bar for all tables, one for the current one."""
    from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("rows"), TimeElapsedColumn(), console=console, transient=True)
    state: dict = {}
    verbs = {"backup": "Backing up", "check": "Checking", "restore": "Restoring"}

    def track(phase: str, table: str, rows: int, all_rows: int):
        if state.get("phase") != phase:
            for task in bar.task_ids:
                bar.remove_task(task)
            state.update(phase=phase, table=None,
                         overall=bar.add_task(f"{verbs[phase]} all tables", total=all_rows))
        if state["table"] is not None:
            bar.update(state["table"], visible=False)
        task = state["table"] = bar.add_task(f"  {table}", total=rows)

        def advance(n: int) -> None:
            bar.advance(task, n)
            bar.advance(state["overall"], n)

        return advance

    return bar, track


@app.command()
def backup(
    out: Annotated[Path, typer.Option("--out", help="The backup file to write")],
    force: Annotated[bool, typer.Option(help="Replace the file if it exists")] = False,
) -> None:
    """Back up the whole database to one file (a consistent snapshot; the app may keep running)."""
    from rich.filesize import decimal as size

    from peerlift.backup import backup as do_backup
    from peerlift.errors import PeerliftError

    settings = _settings()
    bar, track = _table_progress()
    try:
        with bar:
            summary = do_backup(settings.database_url, out, force=force, progress=track)
    except PeerliftError as exc:
        console.print(f"[red]{exc.field or 'error'}:[/red] {exc.message}", soft_wrap=True)
        raise typer.Exit(1)
    m = summary.manifest
    console.print(f"Backed up {summary.tables} tables, {summary.rows:,} rows ({size(summary.data_bytes)} of data, "
                  f"{size(summary.file_bytes)} compressed) from {m['dialect']} at schema {m['schema_revision']} "
                  f"to {out}.", soft_wrap=True)


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="A file written by `peerlift backup`")],
    force: Annotated[bool, typer.Option(help="Replace every row of a database that is not empty")] = False,
) -> None:
    """Restore a backup into an empty database (migrated first if it has no tables), in one transaction."""
    from rich.filesize import decimal as size
    from sqlalchemy.exc import SQLAlchemyError

    from peerlift.backup import restore as do_restore
    from peerlift.db import transaction
    from peerlift.errors import PeerliftError
    from peerlift.identity.audit import verify

    settings = _settings()
    bar, track = _table_progress()

    def overwriting(rows: dict[str, int]) -> None:
        bar.console.print(f"[yellow]--force: replacing all {sum(rows.values()):,} rows of {_safe_url(settings.database_url)}"
                          f"[/yellow], in these tables:", soft_wrap=True)
        for name, n in rows.items():
            bar.console.print(f"  {name}: {n:,} row{'s' if n != 1 else ''}", highlight=False)

    try:
        with bar:
            summary = do_restore(settings.database_url, file, force=force, progress=track, overwriting=overwriting)
    except PeerliftError as exc:
        console.print(f"[red]{exc.field or 'error'}:[/red] {exc.message} Nothing was written.", soft_wrap=True)
        raise typer.Exit(1)
    except SQLAlchemyError as exc:
        console.print(f"[red]The restore failed and was rolled back:[/red] {exc.__class__.__name__}: "
                      f"{str(exc).splitlines()[0]}", soft_wrap=True, markup=True, highlight=False)
        raise typer.Exit(1)
    m = summary.manifest
    console.print(f"Restored {summary.tables} tables, {summary.rows:,} rows ({size(summary.data_bytes)} of data, "
                  f"{size(summary.file_bytes)} file) from {file}: a {m['dialect']} backup made {m['created_at']} by "
                  f"peerlift {m['peerlift_version']} at schema {m['schema_revision']}.", soft_wrap=True)
    with transaction(write=False) as session:
        checked, broken = verify(session)
    if broken is None:
        console.print(f"Audit trail intact: {checked:,} entries, each chained to the one before.")
    else:
        console.print(f"[yellow]The restored audit trail is broken at entry {broken.entry_id}: {broken.problem}[/yellow] "
                      f"(as it was in the backup).")


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what has expired; delete nothing")] = False,
) -> None:
    """Delete what has outlived its PEERLIFT_RETENTION_DAYS_* (never the audit trail, nor a study's data)."""
    from rich.progress import BarColumn

    from peerlift.db import transaction
    from peerlift.privacy.retention import KINDS, purge as do_purge, setting_name

    settings = _settings()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), console=console, transient=True) as bar:
        task = bar.add_task("Counting what has expired" if dry_run else "Purging what has expired", total=len(KINDS))

        def step(kind, _count: int) -> None:
            bar.update(task, description=f"{'Counted' if dry_run else 'Purged'} {kind.key.replace('_', ' ')}")
            bar.advance(task)

        with transaction(write=not dry_run) as session:
            counts = do_purge(session, dry_run=dry_run, progress=step)
    table = Table(title="Would delete (dry run: nothing was deleted)" if dry_run else "Deleted")
    table.add_column("kind")
    table.add_column("kept for", justify="right")
    table.add_column("rows", justify="right")
    for kind in KINDS:
        days = getattr(settings, kind.setting)
        table.add_row(kind.key, f"{days} days" if days else "forever", f"{counts[kind.key]:,}")
    console.print(table)
    console.print(f"Set the days with {', '.join(setting_name(k) for k in KINDS)}; 0 keeps forever.", soft_wrap=True)


if __name__ == "__main__":
    app()


audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit trail's hash chain; name the first entry changed or removed (exit 1)."""
    from peerlift.db import transaction
    from peerlift.identity.audit import verify

    _settings()
    with transaction(write=False) as session:
        checked, broken = verify(session)
    if broken is not None:
        console.print(f"[red]Audit trail broken at entry {broken.entry_id}: {broken.problem}.[/red] "
                      f"{checked:,} entries before it are intact.")
        raise typer.Exit(1)
    console.print(f"Audit trail intact: {checked:,} entries, each chained to the one before.")
