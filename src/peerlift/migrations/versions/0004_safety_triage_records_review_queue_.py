"""safety: triage records, review queue, flags, moderation, escalations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 16:47:15.292692
"""
from alembic import op
import sqlalchemy as sa
import peerlift.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('escalation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=True),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('open', 'acknowledged', 'resolved', name='escalationstatus', native_enum=False, length=16), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('raised_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('notified_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('deadline_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['user_account.id'], name=op.f('fk_escalation_acknowledged_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['user_account.id'], name=op.f('fk_escalation_resolved_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_escalation_space_id_space'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['subject_id'], ['user_account.id'], name=op.f('fk_escalation_subject_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation'))
    )
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.create_index('ix_escalation_status_raised_at', ['status', 'raised_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_escalation_subject_id'), ['subject_id'], unique=False)

    op.create_table('review_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Enum('flag', 'premoderation', 'gated', 'triage', name='reviewsource', native_enum=False, length=16), nullable=False),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('status', sa.Enum('open', 'handled', name='reviewstatus', native_enum=False, length=8), nullable=False),
    sa.Column('opened_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('handled_by_id', sa.Integer(), nullable=True),
    sa.Column('handled_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_review_item_author_id_user_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['handled_by_id'], ['user_account.id'], name=op.f('fk_review_item_handled_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_review_item_space_id_space'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_item')),
    sa.UniqueConstraint('object_type', 'object_id', name=op.f('uq_review_item_object_type_object_id'))
    )
    with op.batch_alter_table('review_item', schema=None) as batch_op:
        batch_op.create_index('ix_review_item_space_id_status', ['space_id', 'status'], unique=False)

    op.create_table('triage_record',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('emergency', sa.Boolean(), nullable=False),
    sa.Column('created_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_triage_record_author_id_user_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_triage_record_space_id_space'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_triage_record')),
    sa.UniqueConstraint('object_type', 'object_id', name=op.f('uq_triage_record_object_type_object_id'))
    )
    with op.batch_alter_table('triage_record', schema=None) as batch_op:
        batch_op.create_index('ix_triage_record_author_id_id', ['author_id', 'id'], unique=False)

    op.create_table('escalation_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('escalation_id', sa.Integer(), nullable=False),
    sa.Column('at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_escalation_step_actor_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['escalation_id'], ['escalation.id'], name=op.f('fk_escalation_step_escalation_id_escalation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_step'))
    )
    with op.batch_alter_table('escalation_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_step_escalation_id'), ['escalation_id'], unique=False)

    op.create_table('flag',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_item_id', sa.Integer(), nullable=False),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('flagger_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Enum('crisis', 'harmful_advice', 'harassment', 'spam', 'privacy', name='flagreason', native_enum=False, length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['flagger_id'], ['user_account.id'], name=op.f('fk_flag_flagger_id_user_account'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['review_item_id'], ['review_item.id'], name=op.f('fk_flag_review_item_id_review_item'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flag')),
    sa.UniqueConstraint('object_type', 'object_id', 'flagger_id', name=op.f('uq_flag_object_type_object_id_flagger_id'))
    )
    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flag_review_item_id'), ['review_item_id'], unique=False)

    op.create_table('moderation_action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('review_item_id', sa.Integer(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.Enum('hide', 'remove', 'restore', 'approve', 'warn', 'mute', 'remove_member', 'dismiss', 'gate', 'ungate', name='modaction', native_enum=False, length=16), nullable=False),
    sa.Column('target_user_id', sa.Integer(), nullable=True),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('until', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'], name=op.f('fk_moderation_action_actor_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['review_item_id'], ['review_item.id'], name=op.f('fk_moderation_action_review_item_id_review_item'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_moderation_action_space_id_space'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_user_id'], ['user_account.id'], name=op.f('fk_moderation_action_target_user_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_moderation_action'))
    )
    with op.batch_alter_table('moderation_action', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_moderation_action_space_id'), ['space_id'], unique=False)

    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visibility', sa.String(length=8), nullable=False, server_default='visible'))
        batch_op.add_column(sa.Column('removed_reason', sa.Text(), nullable=False, server_default=''))

    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gated', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('muted_until', peerlift.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.add_column(sa.Column('visibility', sa.String(length=8), nullable=False, server_default='visible'))
        batch_op.add_column(sa.Column('removed_reason', sa.Text(), nullable=False, server_default=''))

    with op.batch_alter_table('space', schema=None) as batch_op:
        batch_op.add_column(sa.Column('premoderated', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('space', schema=None) as batch_op:
        batch_op.drop_column('premoderated')

    with op.batch_alter_table('post', schema=None) as batch_op:
        batch_op.drop_column('removed_reason')
        batch_op.drop_column('visibility')

    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_column('muted_until')
        batch_op.drop_column('gated')

    with op.batch_alter_table('comment', schema=None) as batch_op:
        batch_op.drop_column('removed_reason')
        batch_op.drop_column('visibility')

    with op.batch_alter_table('moderation_action', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_moderation_action_space_id'))

    op.drop_table('moderation_action')
    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_review_item_id'))

    op.drop_table('flag')
    with op.batch_alter_table('escalation_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_step_escalation_id'))

    op.drop_table('escalation_step')
    with op.batch_alter_table('triage_record', schema=None) as batch_op:
        batch_op.drop_index('ix_triage_record_author_id_id')

    op.drop_table('triage_record')
    with op.batch_alter_table('review_item', schema=None) as batch_op:
        batch_op.drop_index('ix_review_item_space_id_status')

    op.drop_table('review_item')
    with op.batch_alter_table('escalation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_subject_id'))
        batch_op.drop_index('ix_escalation_status_raised_at')

    op.drop_table('escalation')
