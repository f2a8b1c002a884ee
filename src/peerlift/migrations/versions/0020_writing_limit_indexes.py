"""a person's posts, comments and experience reports indexed by author and time (writing limits)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 07:10:00.000000
"""
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

TABLES = ('post', 'comment', 'experience_report')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f'ix_{table}_author_id_created_at'), ['author_id', 'created_at'],
                                  unique=False)
            batch_op.drop_index(batch_op.f(f'ix_{table}_author_id'))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f'ix_{table}_author_id'), ['author_id'], unique=False)
            batch_op.drop_index(batch_op.f(f'ix_{table}_author_id_created_at'))
