"""research: study team, design, consent, enrolment, allocation

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 17:04:05.572521
"""
from alembic import op
import sqlalchemy as sa
import peerlift.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consent_document',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('sections', sa.JSON(), nullable=False),
    sa.Column('created_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_consent_document_study_id_study'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_document')),
    sa.UniqueConstraint('study_id', 'version', name=op.f('uq_consent_document_study_id_version'))
    )
    with op.batch_alter_table('consent_document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_document_study_id'), ['study_id'], unique=False)

    op.create_table('study_design',
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('scheme', sa.Enum('simple', 'blocks', 'stratified', 'cluster', name='randomisation', native_enum=False, length=16), nullable=False),
    sa.Column('factors', sa.JSON(), nullable=False),
    sa.Column('block_sizes', sa.JSON(), nullable=False),
    sa.Column('concealed_seed', sa.String(length=128), nullable=False),
    sa.Column('eligibility', sa.JSON(), nullable=False),
    sa.Column('consent_version', sa.String(length=32), nullable=False),
    sa.Column('withdrawal_rule', sa.Text(), nullable=False),
    sa.Column('hourly_rates', sa.JSON(), nullable=False),
    sa.Column('fixed_costs', sa.JSON(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('dprp_orgcode', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_study_design_study_id_study'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('study_id', name=op.f('pk_study_design'))
    )
    op.create_table('study_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('researcher', 'facilitator', 'clinician', name='studyrole', native_enum=False, length=16), nullable=False),
    sa.Column('added_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_study_member_study_id_study'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_study_member_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_member')),
    sa.UniqueConstraint('study_id', 'user_id', name=op.f('uq_study_member_study_id_user_id'))
    )
    with op.batch_alter_table('study_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_study_member_study_id'), ['study_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_study_member_user_id'), ['user_id'], unique=False)

    op.create_table('enrolment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('invited', 'ineligible', 'eligible', 'consented', 'declined', 'randomised', 'withdrawn', name='enrolmentstatus', native_enum=False, length=16), nullable=False),
    sa.Column('screening_answers', sa.JSON(), nullable=False),
    sa.Column('exclusion_reason', sa.Text(), nullable=False),
    sa.Column('strata', sa.JSON(), nullable=False),
    sa.Column('started_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('screened_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('consented_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('randomised_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('arm_id', sa.Integer(), nullable=True),
    sa.Column('space_id', sa.Integer(), nullable=True),
    sa.Column('withdrawn_at', peerlift.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('withdrawal_reason', sa.Text(), nullable=False),
    sa.Column('withdrawal_data', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['arm_id'], ['arm.id'], name=op.f('fk_enrolment_arm_id_arm'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_enrolment_space_id_space'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_enrolment_study_id_study'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_enrolment_user_id_user_account'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrolment')),
    sa.UniqueConstraint('study_id', 'user_id', name=op.f('uq_enrolment_study_id_user_id'))
    )
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolment_study_id'), ['study_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_enrolment_user_id'), ['user_id'], unique=False)

    op.create_table('allocation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('study_id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=True),
    sa.Column('space_id', sa.Integer(), nullable=True),
    sa.Column('arm_id', sa.Integer(), nullable=False),
    sa.Column('stratum', sa.String(length=200), nullable=False),
    sa.Column('sequence_index', sa.Integer(), nullable=False),
    sa.Column('allocated_by_id', sa.Integer(), nullable=True),
    sa.Column('allocated_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['allocated_by_id'], ['user_account.id'], name=op.f('fk_allocation_allocated_by_id_user_account'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['arm_id'], ['arm.id'], name=op.f('fk_allocation_arm_id_arm'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolment.id'], name=op.f('fk_allocation_enrolment_id_enrolment'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_allocation_space_id_space'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_allocation_study_id_study'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_allocation')),
    sa.UniqueConstraint('enrolment_id', name=op.f('uq_allocation_enrolment_id')),
    sa.UniqueConstraint('study_id', 'stratum', 'sequence_index', name=op.f('uq_allocation_study_id_stratum_sequence_index'))
    )
    with op.batch_alter_table('allocation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_allocation_study_id'), ['study_id'], unique=False)

    op.create_table('consent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('document_version', sa.String(length=32), nullable=False),
    sa.Column('sections_confirmed', sa.JSON(), nullable=False),
    sa.Column('typed_name', sa.String(length=200), nullable=False),
    sa.Column('signed_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['consent_document.id'], name=op.f('fk_consent_document_id_consent_document'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolment.id'], name=op.f('fk_consent_enrolment_id_enrolment'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent')),
    sa.UniqueConstraint('enrolment_id', name=op.f('uq_consent_enrolment_id'))
    )


def downgrade() -> None:
    op.drop_table('consent')
    with op.batch_alter_table('allocation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_allocation_study_id'))

    op.drop_table('allocation')
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrolment_user_id'))
        batch_op.drop_index(batch_op.f('ix_enrolment_study_id'))

    op.drop_table('enrolment')
    with op.batch_alter_table('study_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_member_user_id'))
        batch_op.drop_index(batch_op.f('ix_study_member_study_id'))

    op.drop_table('study_member')
    op.drop_table('study_design')
    with op.batch_alter_table('consent_document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_document_study_id'))

    op.drop_table('consent_document')
