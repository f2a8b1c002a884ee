"""shared experience: experience reports, helpful votes, a community's guide

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import peerlift.db


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'experience_report',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('space_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.Column('treatment_code', sa.String(length=16), nullable=True),
        sa.Column('treatment_name', sa.String(length=120), nullable=False),
        sa.Column('treatment_key', sa.String(length=120), nullable=False),
        sa.Column('duration_value', sa.Integer(), nullable=True),
        sa.Column('duration_unit', sa.String(length=8), nullable=False),
        sa.Column('duration_days', sa.Integer(), nullable=True),
        sa.Column('what_helped', sa.Text(), nullable=False),
        sa.Column('side_effects', sa.JSON(), nullable=False),
        sa.Column('would_recommend', sa.String(length=8), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('body_html', sa.Text(), nullable=False),
        sa.Column('search_text', sa.Text(), nullable=False),
        sa.Column('anonymous', sa.Boolean(), nullable=False),
        sa.Column('visibility', sa.String(length=8), nullable=False),
        sa.Column('removed_reason', sa.Text(), nullable=False),
        sa.Column('created_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('edited_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('deleted_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['author_id'], ['user_account.id'],
                                name=op.f('fk_experience_report_author_id_user_account')),
        sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_experience_report_space_id_space'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_experience_report')),
    )
    with op.batch_alter_table('experience_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experience_report_author_id'), ['author_id'], unique=False)
        batch_op.create_index('ix_experience_report_space_id_treatment_key', ['space_id', 'treatment_key'],
                              unique=False)
    op.create_table(
        'helpful_vote',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('target_type', sa.String(length=20), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=False),
        sa.Column('created_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_helpful_vote_user_id_user_account'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_helpful_vote')),
        sa.UniqueConstraint('user_id', 'target_type', 'target_id',
                            name=op.f('uq_helpful_vote_user_id_target_type_target_id')),
    )
    with op.batch_alter_table('helpful_vote', schema=None) as batch_op:
        batch_op.create_index('ix_helpful_vote_target_type_target_id', ['target_type', 'target_id'], unique=False)
    op.create_table(
        'guide_entry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('space_id', sa.Integer(), nullable=False),
        sa.Column('target_type', sa.String(length=20), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('heading', sa.String(length=200), nullable=False),
        sa.Column('added_by_id', sa.Integer(), nullable=True),
        sa.Column('added_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['added_by_id'], ['user_account.id'],
                                name=op.f('fk_guide_entry_added_by_id_user_account'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_guide_entry_space_id_space'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_guide_entry')),
        sa.UniqueConstraint('space_id', 'target_type', 'target_id',
                            name=op.f('uq_guide_entry_space_id_target_type_target_id')),
    )
    with op.batch_alter_table('guide_entry', schema=None) as batch_op:
        batch_op.create_index('ix_guide_entry_space_id_position', ['space_id', 'position'], unique=False)


def downgrade() -> None:
    op.drop_table('guide_entry')
    op.drop_table('helpful_vote')
    with op.batch_alter_table('experience_report', schema=None) as batch_op:
        batch_op.drop_index('ix_experience_report_space_id_treatment_key')
        batch_op.drop_index(batch_op.f('ix_experience_report_author_id'))
    op.drop_table('experience_report')
