"""full-text search index of posts and comments (FTS5 on SQLite, tsvector on PostgreSQL)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import peerlift.db
from peerlift.search.models import POSTGRES_CREATE_0016, SQLITE_DROP
from peerlift.search.models import SQLITE_CREATE_0016 as SQLITE_CREATE


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'search_document',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('object_id', sa.Integer(), nullable=False),
        sa.Column('space_id', sa.Integer(), nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=False),
        sa.Column('created_at', peerlift.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], name=op.f('fk_search_document_author_id_user_account'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['space_id'], ['space.id'], name=op.f('fk_search_document_space_id_space'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_search_document')),
        sa.UniqueConstraint('kind', 'object_id', name=op.f('uq_search_document_kind_object_id')),
    )
    op.create_index(op.f('ix_search_document_author_id'), 'search_document', ['author_id'], unique=False)
    op.create_index('ix_search_document_space_id_created_at', 'search_document', ['space_id', 'created_at'],
                    unique=False)
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_CREATE if dialect == 'sqlite' else POSTGRES_CREATE_0016 if dialect == 'postgresql' else []:
        op.execute(statement)
    # What is already written becomes findable: the index is filled from the tables.
    op.execute("INSERT INTO search_document (kind, object_id, space_id, author_id, created_at, body) "
               "SELECT 'post', id, space_id, author_id, created_at, body FROM post "
               "WHERE visibility = 'visible' AND deleted_at IS NULL")
    op.execute("INSERT INTO search_document (kind, object_id, space_id, author_id, created_at, body) "
               "SELECT 'comment', c.id, p.space_id, c.author_id, c.created_at, c.body "
               "FROM comment c JOIN post p ON p.id = c.post_id "
               "WHERE c.visibility = 'visible' AND c.deleted_at IS NULL "
               "AND p.visibility = 'visible' AND p.deleted_at IS NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for statement in SQLITE_DROP:
            op.execute(statement)
    op.drop_index('ix_search_document_space_id_created_at', table_name='search_document')
    op.drop_index(op.f('ix_search_document_author_id'), table_name='search_document')
    op.drop_table('search_document')
