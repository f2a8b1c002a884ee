"""``peerlift search ...``: rebuild the search index from the tables."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

app = typer.Typer(help="Full-text search over posts and comments.", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)


@app.command()
def reindex() -> None:
    """Rebuild the whole search index from the posts, comments and experience reports (in one transaction)."""
    from peerlift.db import transaction
    from peerlift.search.index import reindex as do_reindex

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=True)
    tasks: dict[str, int] = {}

    def progress(kind: str, done: int, total: int) -> None:
        if kind not in tasks:
            tasks[kind] = bar.add_task(f"Indexing {kind}s", total=total)
        bar.update(tasks[kind], completed=done, total=total)

    with bar, transaction() as session:
        counts = do_reindex(session.connection(), progress)
    console.print("Search index rebuilt: " + ", ".join(f"{n:,} {kind}{'' if n == 1 else 's'}" for kind, n in counts.items()) + ".")
