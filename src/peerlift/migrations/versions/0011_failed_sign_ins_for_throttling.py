"""failed sign-ins for throttling

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 17:56:30.191127
"""
from alembic import op
import sqlalchemy as sa
import peerlift.db


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('ip_address', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure'))
    )
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.create_index('ix_login_failure_email_hash_at', ['email_hash', 'at'], unique=False)
        batch_op.create_index('ix_login_failure_ip_address_at', ['ip_address', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failure_ip_address_at')
        batch_op.drop_index('ix_login_failure_email_hash_at')

    op.drop_table('login_failure')
