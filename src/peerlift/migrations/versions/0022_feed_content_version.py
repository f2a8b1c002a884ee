"""Each space's content version, raised by triggers on every write that changes what its feed shows, so
a process can answer a feed page again while it is unchanged

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26 19:45:00.000000
"""
import sqlalchemy as sa
from alembic import op

from peerlift.community.feed_cache import create_statements, drop_statements

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('space', sa.Column('content_version', sa.Integer(), nullable=False, server_default='0'))
    for statement in create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    # In place (SQLite 3.35 and later), not by copying the table: dropping the old copy would delete, by
    # cascade, every membership and post that refers to it.
    op.execute("ALTER TABLE space DROP COLUMN content_version")
