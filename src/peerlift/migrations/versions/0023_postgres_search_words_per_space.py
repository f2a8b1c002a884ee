"""PostgreSQL's search index holds each word joined to its space, as SQLite's does since 0021: a search
reads its matches in the searcher's spaces only (SQLite unchanged)

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-26 23:40:00.000000
"""
from alembic import op

from peerlift.search.models import POSTGRES_DROP_SPACE_WORDS, POSTGRES_SPACE_WORDS, POSTGRES_TSV_INDEX

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for statement in POSTGRES_SPACE_WORDS:  # the column is computed for every row already indexed
            op.execute(statement)
        op.execute("DROP INDEX IF EXISTS ix_search_document_tsv")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(POSTGRES_TSV_INDEX)
        for statement in POSTGRES_DROP_SPACE_WORDS:
            op.execute(statement)
