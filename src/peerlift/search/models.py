"""The search index: one row per searchable object, keyed by (kind, object_id).

The row holds what every search filters on (space, author, time) and the text. The full-text machinery
differs by database and lives outside the models, created with the table:

- SQLite: ``search_fts``, a contentless FTS5 table kept in step by triggers on ``search_document``.
  Every word is indexed joined to its space (``s83_walk``, by ``space_terms``, a function each
  connection registers), so a search asks for its words in each of the searcher's spaces, and bm25
  counts a word's documents in those spaces, not in the whole installation: ranking a common word
  costs what its matches in the searcher's spaces cost.
- PostgreSQL: ``search_document.tsv``, a stored generated ``tsvector`` column, ranked by ``ts_rank``, and
  ``space_words``, the same words joined to their space, with a GIN index: found like SQLite's.

``include_name`` tells the migration comparison to leave these alone.
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import DDL, ForeignKey, Index, String, Text, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from peerlift.db import Base, UTCDateTime

TEXT_SEARCH_CONFIG = "english"


class SearchDocument(Base):
    __tablename__ = "search_document"
    __table_args__ = (
        UniqueConstraint("kind", "object_id"),
        Index("ix_search_document_space_id_created_at", "space_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int] = mapped_column()
    space_id: Mapped[int] = mapped_column(ForeignKey("space.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    body: Mapped[str] = mapped_column(Text)


SPACE_TERMS = "peerlift_space_terms"
_WORD = re.compile(r"\w+", re.UNICODE)


def space_terms(space_id: int | None, body: str | None) -> str:
    """What the index holds of a document: each word of ``body`` joined to its space (``s83_walk``).
    The search asks for ``"s83_walk"`` in the same way; the tokenizer (porter, unicode61) treats both
    alike, so whatever it does to a word, it does on both sides."""
    if not body:
        return ""
    prefix = f"s{space_id}_"
    return " ".join(prefix + word for word in _WORD.findall(body))


SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE search_fts USING fts5(terms, content='', "
    "tokenize=\"porter unicode61 remove_diacritics 2 tokenchars '_'\")",
    f"CREATE TRIGGER search_document_ai AFTER INSERT ON search_document BEGIN "
    f"INSERT INTO search_fts(rowid, terms) VALUES (new.id, {SPACE_TERMS}(new.space_id, new.body)); END",
    f"CREATE TRIGGER search_document_ad AFTER DELETE ON search_document BEGIN "
    f"INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', old.id, {SPACE_TERMS}(old.space_id, old.body)); "
    f"END",
    f"CREATE TRIGGER search_document_au AFTER UPDATE ON search_document BEGIN "
    f"INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', old.id, {SPACE_TERMS}(old.space_id, old.body)); "
    f"INSERT INTO search_fts(rowid, terms) VALUES (new.id, {SPACE_TERMS}(new.space_id, new.body)); END",
]
SQLITE_FILL = f"INSERT INTO search_fts(rowid, terms) SELECT id, {SPACE_TERMS}(space_id, body) FROM search_document"
# The index as migration 0016 made it (the words alone, the space as a column), and as 0021 leaves it
# on the way down.
SQLITE_CREATE_0016 = [
    "CREATE VIRTUAL TABLE search_fts USING fts5(body, space_id, content='search_document', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER search_document_ai AFTER INSERT ON search_document BEGIN "
    "INSERT INTO search_fts(rowid, body, space_id) VALUES (new.id, new.body, new.space_id); END",
    "CREATE TRIGGER search_document_ad AFTER DELETE ON search_document BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, body, space_id) VALUES ('delete', old.id, old.body, old.space_id); "
    "END",
    "CREATE TRIGGER search_document_au AFTER UPDATE ON search_document BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, body, space_id) VALUES ('delete', old.id, old.body, old.space_id); "
    "INSERT INTO search_fts(rowid, body, space_id) VALUES (new.id, new.body, new.space_id); END",
]
SQLITE_DROP = ["DROP TABLE IF EXISTS search_fts"]
# PostgreSQL: ``tsv`` (the words with their positions, for ``ts_rank``) and ``space_words`` (each word joined
# to its space, as on SQLite, without positions), which the GIN index holds: a search asks for
# ``s83_walk`` and reads the matches in the searcher's spaces only, not every post holding "walk".
SPACE_WORDS = "peerlift_space_words"
POSTGRES_TSV = (f"ALTER TABLE search_document ADD COLUMN tsv tsvector "
                f"GENERATED ALWAYS AS (to_tsvector('{TEXT_SEARCH_CONFIG}', body)) STORED")
POSTGRES_SPACE_WORDS = [
    f"CREATE OR REPLACE FUNCTION {SPACE_WORDS}(space_id integer, body text) RETURNS tsvector "
    f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ "
    f"SELECT coalesce(array_to_tsvector(array_agg('s' || space_id || '_' || lexeme)), ''::tsvector) "
    f"FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}'::regconfig, body)) $$",
    f"ALTER TABLE search_document ADD COLUMN space_words tsvector "
    f"GENERATED ALWAYS AS ({SPACE_WORDS}(space_id, body)) STORED",
    "CREATE INDEX ix_search_document_space_words ON search_document USING gin (space_words)",
]
POSTGRES_DROP_SPACE_WORDS = [
    "DROP INDEX IF EXISTS ix_search_document_space_words",
    "ALTER TABLE search_document DROP COLUMN IF EXISTS space_words",
    f"DROP FUNCTION IF EXISTS {SPACE_WORDS}(integer, text)",
]
POSTGRES_TSV_INDEX = "CREATE INDEX ix_search_document_tsv ON search_document USING gin (tsv)"
POSTGRES_CREATE_0016 = [POSTGRES_TSV, POSTGRES_TSV_INDEX]  # migration 0016; 0023 moved the index
POSTGRES_CREATE = [POSTGRES_TSV, *POSTGRES_SPACE_WORDS]

for statement in SQLITE_CREATE:
    event.listen(SearchDocument.__table__, "after_create", DDL(statement).execute_if(dialect="sqlite"))
for statement in SQLITE_DROP:
    event.listen(SearchDocument.__table__, "before_drop", DDL(statement).execute_if(dialect="sqlite"))
for statement in POSTGRES_CREATE:
    event.listen(SearchDocument.__table__, "after_create", DDL(statement).execute_if(dialect="postgresql"))


def include_name(name, type_, parent_names) -> bool:
    """Alembic ``include_name``: False for the full-text machinery that the models do not describe."""
    if type_ == "table" and name is not None and name.startswith("search_fts"):
        return False
    if type_ == "column" and name in ("tsv", "space_words") and parent_names.get("table_name") == "search_document":
        return False
    if type_ == "index" and name in ("ix_search_document_tsv", "ix_search_document_space_words"):
        return False
    return True
