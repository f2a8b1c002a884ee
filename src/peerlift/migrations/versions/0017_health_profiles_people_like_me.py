"""health profiles, the "people like me" index and connection requests

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import peerlift.db


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'health_profile',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('conditions', sa.JSON(), nullable=False),
        sa.Column('treatments', sa.JSON(), nullable=False),
        sa.Column('goals', sa.JSON(), nullable=False),
        sa.Column('age_band', sa.String(length=8), nullable=True),
        sa.Column('conditions_visibility', sa.String(length=16), nullable=False),
        sa.Column('treatments_visibility', sa.String(length=16), nullable=False),
        sa.Column('goals_visibility', sa.String(length=16), nullable=False),
        sa.Column('diagnosis_years_visibility', sa.String(length=16), nullable=False),
        sa.Column('age_band_visibility', sa.String(length=16), nullable=False),
        sa.Column('suggest_me', sa.Boolean(), nullable=False),
        sa.Column('hidden', sa.Boolean(), nullable=False),
        sa.Column('updated_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_health_profile_user_id_user_account'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_health_profile')),
    )
    op.create_table(
        'profile_code',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('field', sa.String(length=12), nullable=False),
        sa.Column('visibility', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_profile_code_user_id_user_account'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_profile_code')),
    )
    with op.batch_alter_table('profile_code', schema=None) as batch_op:
        batch_op.create_index('ix_profile_code_key_visibility_user_id', ['key', 'visibility', 'user_id', 'field'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_profile_code_user_id'), ['user_id'], unique=False)
    op.create_table(
        'connection_request',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('sender_id', sa.Integer(), nullable=False),
        sa.Column('recipient_id', sa.Integer(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('created_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('answered_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['recipient_id'], ['user_account.id'],
                                name=op.f('fk_connection_request_recipient_id_user_account'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['sender_id'], ['user_account.id'],
                                name=op.f('fk_connection_request_sender_id_user_account'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_connection_request')),
    )
    with op.batch_alter_table('connection_request', schema=None) as batch_op:
        batch_op.create_index('ix_connection_request_recipient_id_status', ['recipient_id', 'status'], unique=False)
        batch_op.create_index('ix_connection_request_sender_id_recipient_id', ['sender_id', 'recipient_id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('connection_request')
    op.drop_table('profile_code')
    op.drop_table('health_profile')
