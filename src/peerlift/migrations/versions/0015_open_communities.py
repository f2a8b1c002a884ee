"""open communities: anonymous posting allowed per space, anonymous posts, community pseudonyms

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('space', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allow_anonymous', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('anonymous', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pseudonym', sa.String(length=40), nullable=True))
        batch_op.create_index('ix_user_account_pseudonym', ['pseudonym'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_index('ix_user_account_pseudonym')
        batch_op.drop_column('pseudonym')
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_column('anonymous')
    with op.batch_alter_table('space', schema=None) as batch_op:
        batch_op.drop_column('allow_anonymous')
