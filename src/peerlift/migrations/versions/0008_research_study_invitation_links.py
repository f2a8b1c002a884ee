"""research: study invitation links

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 17:05:39.225434
"""
from alembic import op
import sqlalchemy as sa
import peerlift.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('study_invitation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('max_uses', sa.Integer(), nullable=False),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('revoked_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'], name=op.f('fk_study_invitation_created_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_study_invitation_study_id_study'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_invitation')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_study_invitation_token_hash'))
    )
    with op.batch_alter_table('study_invitation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_study_invitation_study_id'), ['study_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('study_invitation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_invitation_study_id'))

    op.drop_table('study_invitation')
