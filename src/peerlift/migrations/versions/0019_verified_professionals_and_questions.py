"""verified professionals, questions and their answers

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25 11:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import peerlift.db


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('applied', 'verified')")


def upgrade() -> None:
    op.create_table(
        'professional',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('profession', sa.String(length=32), nullable=False),
        sa.Column('profession_other', sa.String(length=80), nullable=False),
        sa.Column('registration_number', sa.String(length=64), nullable=False),
        sa.Column('registry_name', sa.String(length=120), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('applied_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['decided_by_id'], ['user_account.id'],
                                name=op.f('fk_professional_decided_by_id_user_account'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_professional_user_id_user_account'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_professional')),
    )
    with op.batch_alter_table('professional', schema=None) as batch_op:
        batch_op.create_index('ix_professional_status', ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_professional_user_id'), ['user_id'], unique=False)
        batch_op.create_index('ix_professional_user_id_open', ['user_id'], unique=True,
                              sqlite_where=OPEN, postgresql_where=OPEN)
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('as_professional', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_question', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('for_professionals', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('accepted_comment_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_column('accepted_comment_id')
        batch_op.drop_column('for_professionals')
        batch_op.drop_column('is_question')
    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_column('as_professional')
    with op.batch_alter_table('professional', schema=None) as batch_op:
        batch_op.drop_index('ix_professional_user_id_open')
        batch_op.drop_index(batch_op.f('ix_professional_user_id'))
        batch_op.drop_index('ix_professional_status')
    op.drop_table('professional')
