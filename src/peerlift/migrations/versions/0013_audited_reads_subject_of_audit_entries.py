"""audited reads: the subject of an audit entry

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 10:12:41.520311
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_audit_entry_subject_id_id', ['subject_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_entry_actor_id_id', ['actor_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entry_actor_id_id')
        batch_op.drop_index('ix_audit_entry_subject_id_id')
        batch_op.drop_column('subject_id')
