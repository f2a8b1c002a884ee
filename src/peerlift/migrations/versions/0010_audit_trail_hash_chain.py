"""audit trail hash chain

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-25 17:53:09.123017
"""
from alembic import op
import sqlalchemy as sa
import peerlift.db


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('hash', sa.String(length=64), nullable=False, server_default=''))
    _chain_existing()


def _chain_existing() -> None:
    """Entries written before the chain existed are chained now, in their order."""
    from types import SimpleNamespace

    from peerlift.identity.audit import GENESIS, entry_hash

    entries = sa.table('audit_entry', sa.column('id', sa.Integer), sa.column('at', peerlift.db.UTCDateTime()),
                       sa.column('actor_id', sa.Integer), sa.column('action', sa.String),
                       sa.column('object_type', sa.String), sa.column('object_id', sa.Integer),
                       sa.column('ip_address', sa.String), sa.column('detail', sa.Text),
                       sa.column('prev_hash', sa.String), sa.column('hash', sa.String))
    bind = op.get_bind()
    previous = GENESIS
    rows = bind.execute(sa.select(entries).order_by(entries.c.id)).mappings().all()
    for row in rows:
        digest = entry_hash(SimpleNamespace(**row), previous)
        bind.execute(entries.update().where(entries.c.id == row["id"]).values(prev_hash=previous, hash=digest))
        previous = digest


def downgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_column('hash')
        batch_op.drop_column('prev_hash')

