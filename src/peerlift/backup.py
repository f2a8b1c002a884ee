"""Backups of the whole database in a file of peerlift's own, restored into SQLite or PostgreSQL.

A backup is a zip file:

* ``manifest.json``: the format and its version, the peerlift version and Alembic schema revision that
  wrote it, the database it came from (``sqlite`` or ``postgresql``), when, and for every table (in
  dependency order, ``Base.metadata.sorted_tables``) its file, columns with their kinds, row count,
  uncompressed size and the SHA-256 of its uncompressed data;
* ``tables/NNN_<table>.jsonl``: one file per table (deflated), one JSON array per row in primary-key
  order. Each column has a kind that says how its values are written, so nothing depends on the
  database it came from: integers of any size as JSON integers, floats as their shortest exact decimal,
  booleans, text, UTC timestamps to the microsecond (``2025-01-31T09:00:00.000000+00:00``), dates
  (``2025-01-31``), JSON columns as the exact JSON text stored, bytes in base64, decimals as text.

A SQLite backup restores into PostgreSQL and back. The backup reads every table in one transaction: on
PostgreSQL ``REPEATABLE READ, READ ONLY``, on SQLite (in WAL mode) one read transaction; either is a
consistent snapshot while the app keeps writing.

A restore checks the whole file first (format, schema revision, every table's row count and checksum)
and writes nothing if anything is wrong. It goes into an empty database (a database without tables is
migrated first, in the same transaction) or, when forced, replaces every row of a database at the same
revision. It runs in one transaction, moves PostgreSQL's id sequences past the restored ids, and adds
one audit entry chained after the restored trail.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Engine,
    Enum,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    func,
    inspect,
    insert,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from peerlift import __version__
from peerlift.db import Base, UTCDateTime, get_engine, transaction, utcnow
from peerlift.errors import Conflict, InvalidInput, NotFound

FORMAT = "peerlift-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BATCH = 2_000

# progress(phase, table, rows of the table, rows of every table) -> advance(rows done since the last call)
Advance = Callable[[int], None]
Tracker = Callable[[str, str, int, int], Advance]


def _quiet(_phase: str, _table: str, _rows: int, _all_rows: int) -> Advance:
    return lambda _n: None


# --- the schema -----------------------------------------------------------------------------------

def tables() -> list[Table]:
    from peerlift.migrate import all_models

    all_models()
    return list(Base.metadata.sorted_tables)


def code_revision() -> str:
    """The newest schema revision this peerlift knows (its Alembic head)."""
    from alembic.script import ScriptDirectory

    from peerlift.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def database_revision(conn: Connection) -> str | None:
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


# --- column kinds: how each value is written to the file and read back -------------------------------

class Unsupported(Exception):
    pass


def kind_of(column) -> str:
    t = column.type
    if isinstance(t, UTCDateTime):
        return "datetime"
    if isinstance(t, Enum):
        return "text"
    if isinstance(t, Boolean):
        return "bool"
    if isinstance(t, Integer):
        return "int"
    if isinstance(t, Float):
        return "float"
    if isinstance(t, Numeric):
        return "decimal"
    if isinstance(t, JSON):
        return "json"
    if isinstance(t, LargeBinary):
        return "bytes"
    if isinstance(t, DateTime):
        return "datetime" if t.timezone else "timestamp"
    if isinstance(t, Date):
        return "date"
    if isinstance(t, String):  # Text and Enum are Strings too
        return "text"
    raise Unsupported(f"{column.table.name}.{column.name} has a type backups do not know ({t!r})")


def _read_expr(column, kind: str):
    """The column as selected: values come back in the plain Python form ``encode`` expects."""
    if kind == "json":
        return cast(column, Text)  # the exact JSON text stored; SQL NULL stays None
    if isinstance(column.type, Enum):
        return type_coerce(column, String())  # the stored name, not the Python enum
    return column


def _bind_expr(column, name: str):
    """A parameter that takes the value as decoded (SQLite's inserts; PostgreSQL's COPY takes them as they are)."""
    if isinstance(column.type, (Enum, JSON)):
        return bindparam(name, type_=String())  # the enum's name, the JSON text
    return bindparam(name, type_=column.type)


def _utc_text(value: dt.datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back what was stored: UTC without an offset
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _same(value: Any) -> Any:
    return value


ENCODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _utc_text, "timestamp": lambda v: v.isoformat(timespec="microseconds"),
    "date": lambda v: v.isoformat(), "float": float, "int": int, "bool": bool, "decimal": str,
    "bytes": lambda v: base64.b64encode(bytes(v)).decode("ascii"), "text": _same, "json": _same,
}


def _checked(kind: str, test: Callable[[Any], bool], then: Callable[[Any], Any] = _same) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        if not test(value):
            raise ValueError(f"not {kind}: {value!r}")
        return then(value)
    return read


def _is_number(value: Any) -> bool:
    return value.__class__ is float or value.__class__ is int


DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": dt.datetime.fromisoformat, "timestamp": dt.datetime.fromisoformat, "date": dt.date.fromisoformat,
    "float": _checked("a number", _is_number, float),
    "int": _checked("an integer", lambda v: v.__class__ is int),
    "bool": _checked("true or false", lambda v: v.__class__ is bool),
    "decimal": decimal.Decimal, "bytes": lambda v: base64.b64decode(v, validate=True),
    "text": _checked("text", lambda v: v.__class__ is str), "json": _checked("JSON text", lambda v: v.__class__ is str),
}


def encode(kind: str, value: Any) -> Any:
    """A column value as it is written to the file."""
    return None if value is None else ENCODERS[kind](value)


def decode(kind: str, value: Any) -> Any:
    """A value of the file as the column takes it; ValueError when it is not of the column's kind."""
    return None if value is None else DECODERS[kind](value)


def _columns(table: Table) -> list[tuple[str, str]]:
    return [(c.name, kind_of(c)) for c in table.columns]


def _member(index: int, table: Table) -> str:
    return f"tables/{index:03d}_{table.name}.jsonl"


# --- backup ----------------------------------------------------------------------------------------

@dataclass
class Summary:
    tables: int
    rows: int
    data_bytes: int          # uncompressed table data
    file_bytes: int          # the backup file
    manifest: dict = field(default_factory=dict)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """One connection holding one consistent read transaction."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def backup(url: str, out: Path, *, force: bool = False, progress: Tracker | None = None) -> Summary:
    """Write the whole database at ``url`` to ``out``. Written to a temporary file and renamed into place,
    so a failed backup leaves nothing behind."""
    track = progress or _quiet
    engine = get_engine(url)
    out = Path(out)
    if out.exists() and out.is_dir():
        raise InvalidInput(f"{out} is a folder; give the backup file's name.", field="out")
    if out.exists() and not force:
        raise Conflict(f"{out} exists; choose another name or pass --force to replace it.", field="out")
    all_tables = tables()
    try:
        layout = [(t, _columns(t)) for t in all_tables]
    except Unsupported as exc:
        raise InvalidInput(str(exc), field="schema") from None
    head = code_revision()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _snapshot(engine) as conn:
            revision = database_revision(conn)
            if revision != head:
                raise Conflict(_backup_revision_message(revision, head), field="database")
            counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in all_tables}
            entries = []
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
                zf.comment = f"{FORMAT} {FORMAT_VERSION}".encode()
                for index, (table, cols) in enumerate(layout, start=1):
                    advance = track("backup", table.name, counts[table.name], sum(counts.values()))
                    name = _member(index, table)
                    rows, size, digest = _write_table(conn, zf, name, table, cols, advance)
                    entries.append({"name": table.name, "file": name, "rows": rows, "bytes": size, "sha256": digest,
                                    "columns": [{"name": c, "kind": k} for c, k in cols]})
                manifest = {
                    "format": FORMAT, "format_version": FORMAT_VERSION, "peerlift_version": __version__,
                    "schema_revision": revision, "dialect": engine.dialect.name,
                    "created_at": utcnow().isoformat(timespec="microseconds"),
                    "totals": {"tables": len(entries), "rows": sum(e["rows"] for e in entries),
                               "bytes": sum(e["bytes"] for e in entries)},
                    "tables": entries,
                }
                member = zipfile.ZipInfo(MANIFEST, date_time=utcnow().timetuple()[:6])
                member.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(member, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    totals = manifest["totals"]
    return Summary(totals["tables"], totals["rows"], totals["bytes"], out.stat().st_size, manifest)


def _backup_revision_message(revision: str | None, head: str) -> str:
    if revision is None:
        return (f"The database has no schema revision (no alembic_version table); this peerlift {__version__} "
                f"works at revision {head}. Run `peerlift migrate` first.")
    return (f"The database is at schema revision {revision}; this peerlift {__version__} works at revision {head}. "
            f"Run `peerlift migrate` first, or back it up with the peerlift version of revision {revision}.")


def _write_table(conn: Connection, zf: zipfile.ZipFile, name: str, table: Table, cols: list[tuple[str, str]],
                 advance: Advance) -> tuple[int, int, str]:
    encoders = [ENCODERS[k] for _c, k in cols]
    query = select(*[_read_expr(table.c[c], k) for c, k in cols]).order_by(*table.primary_key.columns)
    digest, rows, size = hashlib.sha256(), 0, 0
    member = zipfile.ZipInfo(name, date_time=utcnow().timetuple()[:6])
    member.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(member, "w", force_zip64=True) as fh:
        result = conn.execute(query.execution_options(yield_per=BATCH))
        for batch in result.partitions():
            chunk = "".join(
                json.dumps([None if v is None else e(v) for e, v in zip(encoders, row)], ensure_ascii=False,
                           separators=(",", ":"))
                + "\n" for row in batch).encode("utf-8")
            digest.update(chunk)
            fh.write(chunk)
            rows += len(batch)
            size += len(chunk)
            advance(len(batch))
    return rows, size, digest.hexdigest()


# --- reading a backup ---------------------------------------------------------------------------------

class BackupRefused(InvalidInput):
    """The file is not a backup this peerlift can restore; nothing was written."""


@dataclass
class Archive:
    path: Path
    zip: zipfile.ZipFile
    manifest: dict

    def lines(self, entry: dict) -> Iterator[bytes]:
        """The table's data lines; a damaged member is refused naming the table."""
        try:
            with self.zip.open(entry["file"]) as fh:
                yield from fh
        except KeyError:
            raise BackupRefused(f"The backup has no data for table {entry['name']} ({entry['file']} is missing).",
                                field="file") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise BackupRefused(f"The data of table {entry['name']} is damaged ({exc}); the backup cannot be "
                                f"restored.", field="file") from None


def open_backup(path: Path) -> Archive:
    """Open and check the file's envelope and manifest (not yet the tables' data)."""
    path = Path(path)
    if not path.exists():
        raise NotFound(f"No file {path}.", field="file")
    if not path.is_file():
        raise BackupRefused(f"{path} is not a file.", field="file")
    with path.open("rb") as fh:
        start = fh.read(4)
    if not start:
        raise BackupRefused(f"{path} is empty: not a peerlift backup.", field="file")
    if start != b"PK\x03\x04":
        raise BackupRefused(f"{path} is not a peerlift backup (not a zip file).", field="file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise BackupRefused(f"{path} is truncated or damaged: it starts like a backup but its end (the zip "
                            f"directory) is missing. Copy the whole file again.", field="file") from None
    try:
        raw = zf.read(MANIFEST)
    except KeyError:
        zf.close()
        raise BackupRefused(f"{path} is a zip file but not a peerlift backup (it has no {MANIFEST}).",
                            field="file") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        zf.close()
        raise BackupRefused(f"The manifest of {path} is damaged ({exc}).", field="file") from None
    try:
        manifest = json.loads(raw)
    except ValueError:
        zf.close()
        raise BackupRefused(f"The manifest of {path} is not valid JSON: the file is damaged.", field="file") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        zf.close()
        raise BackupRefused(f"{path} is not a peerlift backup (its manifest does not say {FORMAT!r}).", field="file")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        zf.close()
        raise BackupRefused(f"{path} is a peerlift backup of format version {version}; this peerlift "
                            f"{__version__} reads version {FORMAT_VERSION}.", field="file")
    for key in ("schema_revision", "dialect", "created_at", "peerlift_version", "tables"):
        if key not in manifest:
            zf.close()
            raise BackupRefused(f"The manifest of {path} has no {key!r}: the file is damaged.", field="file")
    return Archive(path, zf, manifest)


def check_revision(archive: Archive, head: str) -> None:
    m = archive.manifest
    if m["schema_revision"] != head:
        raise BackupRefused(
            f"The backup is at schema revision {m['schema_revision']} (made by peerlift {m['peerlift_version']}); "
            f"this peerlift {__version__} is at revision {head}. Restore it with the peerlift version of revision "
            f"{m['schema_revision']}, then run `peerlift migrate` with this one.", field="file")


def check_layout(archive: Archive, all_tables: list[Table]) -> None:
    """The backup's tables and columns are this schema's."""
    listed = archive.manifest["tables"]
    if not isinstance(listed, list) or not all(isinstance(e, dict) for e in listed):
        raise BackupRefused("The manifest's list of tables is not well formed: the manifest is damaged.", field="file")
    entries = {e.get("name"): e for e in listed}
    for table in all_tables:
        entry = entries.get(table.name)
        if entry is None:
            raise BackupRefused(f"The backup has no table {table.name} although its schema revision has it: "
                                f"the manifest is damaged.", field="file")
        well_formed = (isinstance(entry.get("file"), str) and isinstance(entry.get("sha256"), str)
                       and all(isinstance(entry.get(key), int) and entry[key] >= 0 for key in ("rows", "bytes")))
        if not well_formed:
            raise BackupRefused(f"The manifest's entry for table {table.name} is incomplete: the manifest is damaged.",
                                field="file")
        want = [{"name": c, "kind": k} for c, k in _columns(table)]
        if entry.get("columns") != want:
            raise BackupRefused(f"The columns of table {table.name} in the backup differ from this schema's: "
                                f"the manifest is damaged.", field="file")
    extra = sorted(set(entries) - {t.name for t in all_tables})
    if extra:
        raise BackupRefused(f"The backup has tables this schema does not: {', '.join(extra)}.", field="file")


def verify_data(archive: Archive, all_tables: list[Table], track: Tracker) -> None:
    """Every table's data matches its row count and SHA-256."""
    entries = {e["name"]: e for e in archive.manifest["tables"]}
    for table in all_tables:
        entry = entries[table.name]
        advance = track("check", table.name, entry["rows"], _total_rows(archive))
        digest, rows = hashlib.sha256(), 0
        for line in archive.lines(entry):
            digest.update(line)
            rows += 1
            if rows % BATCH == 0:
                advance(BATCH)
        advance(rows % BATCH)
        _check_table(entry, rows, digest.hexdigest())


def _total_rows(archive: Archive) -> int:
    return sum(e["rows"] for e in archive.manifest["tables"])


def _check_table(entry: dict, rows: int, digest: str) -> None:
    if digest != entry["sha256"]:
        raise BackupRefused(f"The data of table {entry['name']} does not match its checksum (SHA-256): the backup "
                            f"is corrupted and cannot be restored.", field="file")
    if rows != entry["rows"]:
        raise BackupRefused(f"Table {entry['name']} has {rows} rows in the backup but its manifest says "
                            f"{entry['rows']}: the backup is damaged.", field="file")


# --- restore -----------------------------------------------------------------------------------------

@dataclass
class Target:
    fresh: bool                       # no peerlift table at all: migrate first
    revision: str | None
    rows: dict[str, int]              # table -> rows, of the tables that have any


def inspect_target(engine: Engine, all_tables: list[Table]) -> Target:
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        ours = {t.name for t in all_tables}
        if not names & (ours | {"alembic_version"}):
            return Target(True, None, {})
        revision = database_revision(conn)
        rows = {}
        for table in all_tables:
            if table.name in names:
                n = conn.execute(select(func.count()).select_from(table)).scalar_one()
                if n:
                    rows[table.name] = n
        return Target(False, revision, rows)


def restore(url: str, path: Path, *, force: bool = False, progress: Tracker | None = None,
            overwriting: Callable[[dict[str, int]], None] | None = None) -> Summary:
    """Restore the backup at ``path`` into the database at ``url``. Refused with nothing written: a file
    that is missing, not a backup, truncated or corrupted, of another schema revision, and a database that
    is not empty (unless ``force``: then ``overwriting`` hears which tables lose how many rows)."""
    track = progress or _quiet
    archive = open_backup(path)
    try:
        all_tables = tables()
        head = code_revision()
        check_revision(archive, head)
        check_layout(archive, all_tables)
        verify_data(archive, all_tables, track)
        engine = get_engine(url)  # only now: a SQLite file is not made for a backup that is refused
        target = inspect_target(engine, all_tables)
        if not target.fresh:
            if target.revision is None:
                raise Conflict("The database has peerlift tables but no schema revision (alembic_version), so it "
                               "cannot be checked against the backup. Restore into an empty database.",
                               field="database")
            if target.revision != head:
                raise Conflict(f"The database is at schema revision {target.revision}; the backup and this peerlift "
                               f"are at {head}. Run `peerlift migrate` first, or restore into an empty database.",
                               field="database")
            if target.rows and not force:
                total = sum(target.rows.values())
                listed = ", ".join(f"{name} ({n:,})" for name, n in list(target.rows.items())[:5])
                more = ", ..." if len(target.rows) > 5 else ""
                raise Conflict(f"The database is not empty: {total:,} rows in {len(target.rows)} tables ({listed}{more}). "
                               f"Restore into an empty database, or pass --force to replace all of its data.",
                               field="database")
            if target.rows and overwriting is not None:
                overwriting(target.rows)
        _load(engine, url if target.fresh else None, archive, all_tables, replace=bool(target.rows), track=track)
        totals = archive.manifest.get("totals") or {}
        return Summary(len(all_tables), _total_rows(archive),
                       int(totals.get("bytes") or sum(e["bytes"] for e in archive.manifest["tables"])),
                       archive.path.stat().st_size, archive.manifest)
    finally:
        archive.zip.close()


def _load(engine: Engine, migrate_url: str | None, archive: Archive, all_tables: list[Table], *, replace: bool,
          track: Tracker) -> None:
    """One transaction: the migrations of a database without tables, the rows, the sequences, the audit entry."""
    from peerlift.identity.service import audit

    dialect = engine.dialect.name
    entries = {e["name"]: e for e in archive.manifest["tables"]}
    with transaction(engine) as session:
        if migrate_url is not None:
            from alembic import command

            from peerlift.migrate import alembic_config

            config = alembic_config(migrate_url)
            config.attributes["connection"] = session.connection()  # DDL in this transaction (both databases)
            command.upgrade(config, archive.manifest["schema_revision"])
        if dialect == "sqlite":
            session.execute(text("PRAGMA defer_foreign_keys = ON"))  # checked at commit
        if replace:
            for table in reversed(all_tables):
                session.execute(delete(table))
        all_rows = _total_rows(archive)
        for table in all_tables:
            entry = entries[table.name]
            advance = track("restore", table.name, entry["rows"], all_rows)
            _load_table(session, dialect, table, entry, archive.lines(entry), advance)
        _put_back_content_versions(session, archive, entries["space"])
        if dialect == "postgresql":
            _move_sequences(session, all_tables)
        m = archive.manifest
        audit(session, None, "backup.restored", detail=(
            f"Restored from a backup made {m['created_at']} on {m['dialect']} by peerlift {m['peerlift_version']} "
            f"(schema {m['schema_revision']}, {sum(e['rows'] for e in m['tables'])} rows)"))


def _load_table(session: Session, dialect: str, table: Table, entry: dict, lines: Iterator[bytes],
                advance: Advance) -> None:
    """Insert one table's rows, checking them against the manifest again as they are read. A row may point
    at a later row of its own table: PostgreSQL checks a COPY's foreign keys at its end, SQLite all of
    them at the commit (``defer_foreign_keys``)."""
    cols = [(c["name"], c["kind"]) for c in entry["columns"]]
    digest, count = hashlib.sha256(), 0

    def rows() -> Iterator[list]:
        nonlocal count
        decoders = [DECODERS[k] for _c, k in cols]
        for line in lines:
            digest.update(line)
            count += 1
            try:
                values = json.loads(line)
                if not isinstance(values, list) or len(values) != len(cols):
                    raise ValueError(f"{len(cols)} values expected")
                row = [None if v is None else d(v) for d, v in zip(decoders, values)]
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise BackupRefused(f"Row {count} of table {table.name} is not valid ({exc}).", field="file") from None
            yield row

    if dialect == "postgresql":
        _copy(session, table, [c for c, _k in cols], rows(), advance)
    else:
        _insert(session, table, [c for c, _k in cols], rows(), advance)
    _check_table(entry, count, digest.hexdigest())


def _put_back_content_versions(session: Session, archive: Archive, entry: dict) -> None:
    """The triggers that keep each space's feed version (``community/feed_cache.py``) raised it as the rows
    of its posts, memberships and the rest went in: every space gets back the version it had."""
    names = [c["name"] for c in entry["columns"]]
    if "content_version" not in names:
        return
    at_id, at_version = names.index("id"), names.index("content_version")
    versions = [{"space_id": row[at_id], "version": row[at_version]}
                for row in (json.loads(line) for line in archive.lines(entry))]
    if versions:
        session.execute(text("UPDATE space SET content_version = :version WHERE id = :space_id"), versions)


def _insert(session: Session, table: Table, columns: list[str], rows: Iterator[list], advance: Advance) -> None:
    names = [f"p{i}" for i in range(len(columns))]
    statement = insert(table).values({c: _bind_expr(table.c[c], n) for c, n in zip(columns, names)})
    batch: list[dict] = []
    for row in rows:
        batch.append(dict(zip(names, row)))
        if len(batch) >= BATCH:
            session.execute(statement, batch)
            advance(len(batch))
            batch = []
    if batch:
        session.execute(statement, batch)
        advance(len(batch))


def _copy(session: Session, table: Table, names: list[str], rows: Iterator[list], advance: Advance) -> None:
    """PostgreSQL's COPY through psycopg, in the session's transaction. The decoded values are what the
    columns store (UTC datetimes, enum names, JSON text), so no SQLAlchemy type needs to process them."""
    quote = session.get_bind().dialect.identifier_preparer.quote
    driver = session.connection().connection.driver_connection
    sql = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        done = 0
        for row in rows:
            copy.write_row(row)
            done += 1
            if done == BATCH:
                advance(done)
                done = 0
        advance(done)


def _move_sequences(session: Session, all_tables: list[Table]) -> None:
    """Explicit ids do not move PostgreSQL's sequences: set each past the largest id restored."""
    quote = session.get_bind().dialect.identifier_preparer.quote
    for table in all_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        sequence = session.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                   {"t": quote(table.name), "c": column.name}).scalar()
        if sequence is None:
            continue
        session.execute(text(f"SELECT setval(:s, COALESCE((SELECT MAX({quote(column.name)}) FROM "
                             f"{quote(table.name)}), 0) + 1, false)"), {"s": sequence})
