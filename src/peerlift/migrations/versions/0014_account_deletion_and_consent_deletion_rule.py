"""account deletion time and the consent document's rule on account deletion

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:12:00.000000
"""
from alembic import op
import sqlalchemy as sa
import peerlift.db


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', peerlift.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('consent_document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('on_account_deletion', sa.String(length=24), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('consent_document', schema=None) as batch_op:
        batch_op.drop_column('on_account_deletion')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
