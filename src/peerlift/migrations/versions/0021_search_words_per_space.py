"""SQLite's search index holds each word joined to its space, so ranking a word counts its documents in
the searcher's spaces, not the whole installation (PostgreSQL unchanged)

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 18:00:00.000000
"""
from alembic import op

from peerlift.search.models import SQLITE_CREATE, SQLITE_CREATE_0016, SQLITE_FILL

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

TRIGGERS = ('search_document_ai', 'search_document_ad', 'search_document_au')


def _replace(create: list[str], fill: str) -> None:
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS search_fts")
    for statement in create:
        op.execute(statement)
    op.execute(fill)
    op.execute("INSERT INTO search_fts(search_fts) VALUES ('optimize')")


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _replace(SQLITE_CREATE, SQLITE_FILL)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _replace(SQLITE_CREATE_0016, "INSERT INTO search_fts(search_fts) VALUES ('rebuild')")
