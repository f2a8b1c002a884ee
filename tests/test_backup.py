"""Backups: a study backed up and restored into an empty database exports byte for byte what it did
before (on SQLite, on PostgreSQL, and from one to the other); a backup is one snapshot while the app
writes; every bad file or database is refused with a clear message, a non-zero exit and nothing written."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import struct
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, Numeric, Table, func, inspect, select, text
from typer.testing import CliRunner

from peerlift import db as dbmod
from peerlift.backup import (
    FORMAT_VERSION,
    MANIFEST,
    backup,
    code_revision,
    decode,
    encode,
    kind_of,
    open_backup,
    verify_data,
)
from peerlift.cli import app
from peerlift.community.models import Post
from peerlift.db import clock_at
from peerlift.identity import service as identity
from peerlift.identity.models import AuditEntry
from peerlift.migrate import upgrade
from peerlift.research.models import EnrolmentStatus
from tests.conftest import _use_database, build_world, migrate_fresh
from tests.research.analytics_factory import at, comment, design, enrol, log, post, questionnaire, react

runner = CliRunner()
PROTOCOL = Path(__file__).resolve().parents[1] / "protocols" / "diabetes-prevention-cdc-dpp.yaml"
EXPORTS = [("csv", []), ("parquet", []), ("fhir", []), ("dprp", ["--arm", "a"])]


# --- a study with some history -----------------------------------------------------------------------

def _study() -> object:
    """The personas' trial with a design, enrolments (one withdrawn, one only screened), posts, a reply,
    reactions, a poll and its votes, a DM, tracking entries, a questionnaire, a protocol delivered to the
    circle for three days, and audit entries."""
    from peerlift.community import service as community
    from peerlift.community.models import Poll, PollOption
    from peerlift.policy import circle_access, conversation_access
    from peerlift.protocols import service as protocols
    from tests.conftest import run_due

    with dbmod.transaction() as s:
        w = build_world(s)
    with dbmod.transaction() as s:
        design(s, w.study, dprp_orgcode="ORG123", withdrawal_rule="keep: data up to withdrawal is kept",
               hourly_rates={"facilitator": 40.5, "default": 30}, fixed_costs=[{"arm": None, "item": "Café ☕",
                                                                                "amount": 1200.25}])
        enrol(s, w.study, w.alice, w.arm_a, w.circle, answers={
            "age": 54, "sex": "female", "ethnicity": "not_hispanic", "race": ["white"], "height_in": 65,
            "education": "college_4", "state": "ny", "glucose_test": "yes", "payer": 3})
        enrol(s, w.study, w.carol, w.arm_b, w.other_circle, answers={"age": 61})
        enrol(s, w.study, w.bob, w.arm_a, w.circle, status=EnrolmentStatus.withdrawn, withdrawal_data="delete")
        enrol(s, w.study, w.pat, w.arm_a, w.circle, status=EnrolmentStatus.eligible)
    with dbmod.transaction() as s:
        version = protocols.register(s, PROTOCOL.read_text(encoding="utf-8"), w.admin, filename=PROTOCOL.name)
        with clock_at(at(0)):
            protocols.assign(s, w.coach, s.get(type(w.circle), w.circle.id), version, at(0).date())
    with clock_at(at(3, 10)):
        run_due(times=50)
    with dbmod.transaction() as s:
        p = post(s, w.alice, w.circle, "Call me on 07700 900123 any time — ça va? 🚶", at(1, 1))
        first = comment(s, w.coach, w.circle, p, "Welcome!", at(1, 2))
        with clock_at(at(1, 3)):
            community.create_comment(s, circle_access(s, w.alice, w.circle.id), p, "Thank you", parent_id=first.id)
        comment(s, w.bob, w.circle, p, "Bob was here", at(1, 4))
        react(s, w.carol, w.other_circle, post(s, w.carol, w.other_circle, "Hi B", at(2)), at(2, 1))
        react(s, w.pat, w.circle, p, at(2, 2), kind="clap")
        with clock_at(at(2, 3)):
            polled = community.create_post(s, circle_access(s, w.coach, w.circle.id), "How many walks?",
                                           poll_question="Walks this week?", poll_options=["none", "1-2", "3+"])
            s.flush()
            poll = s.scalar(select(Poll).where(Poll.post_id == polled.id))
            options = s.scalars(select(PollOption.id).where(PollOption.poll_id == poll.id).order_by(PollOption.id)).all()
            community.vote(s, circle_access(s, w.alice, w.circle.id), poll, [options[2]])
        with clock_at(at(3)):
            conv = community.open_conversation(s, w.alice, w.coach)
            community.send_message(s, w.alice, conversation_access(s, w.alice, conv.id), "A private question")
        log(s, w.alice, "weight", 80, 1, unit="kg")
        log(s, w.alice, "weight", 79.5, 8, unit="kg")
        log(s, w.alice, "steps", 6000, 2)
        log(s, w.alice, "active_minutes", 40, 2)
        log(s, w.alice, "mood", 7, 3)
        questionnaire(s, w.alice, w.coach, 4, answers=[1, 1, 0, 0, 2, 0, 0, 1, 0])
        identity.audit(s, w.admin.id, "study.checked", "study", w.study.id, ip="203.0.113.9", detail="ünïcode")
    return w


def _export_all(base: Path) -> dict[str, bytes]:
    """Every export format, with the clock fixed (the manifest records the export time)."""
    with clock_at(at(30)):
        for fmt, extra in EXPORTS:
            result = runner.invoke(app, ["export", "--study", "trial", "--format", fmt, "--out", str(base / fmt),
                                         *extra])
            assert result.exit_code == 0, result.output
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def _counts() -> dict[str, int]:
    with dbmod.get_engine().connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in dbmod.Base.metadata.sorted_tables}


def _drop_everything() -> None:
    engine = dbmod.get_engine()
    dbmod.Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def _lines(path: Path, table: str) -> list[bytes]:
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read(MANIFEST))
        entry = next(e for e in manifest["tables"] if e["name"] == table)
        return zf.read(entry["file"]).splitlines()


def _manifest(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read(MANIFEST))


def _audit_verifies() -> str:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    return result.output


# --- backup and restore ------------------------------------------------------------------------------

def test_a_study_restored_into_an_empty_database_exports_byte_for_byte_the_same(database, tmp_path):
    migrate_fresh(database)
    w = _study()
    before = _export_all(tmp_path / "before")  # the first export also makes the study's pseudonym key
    assert {"csv/posts.csv", "parquet/posts.parquet", "fhir/bundle.json", "dprp/dprp.csv"} <= set(before)
    counts = _counts()
    assert counts["planned_delivery"] and counts["poll_vote"] and counts["questionnaire_response"]
    file = tmp_path / "peerlift.backup"

    result = runner.invoke(app, ["backup", "--out", str(file)])
    assert result.exit_code == 0, result.output
    assert f"Backed up {len(counts)} tables, {sum(counts.values()):,} rows" in result.output
    manifest = _manifest(file)
    assert manifest["format_version"] == FORMAT_VERSION and manifest["schema_revision"] == code_revision()
    assert manifest["dialect"] == dbmod.get_engine().dialect.name
    assert [t["name"] for t in manifest["tables"]] == [t.name for t in dbmod.Base.metadata.sorted_tables]
    assert {t["name"]: t["rows"] for t in manifest["tables"]} == counts

    _drop_everything()
    result = runner.invoke(app, ["restore", str(file)])
    assert result.exit_code == 0, result.output
    assert f"Restored {len(counts)} tables, {sum(counts.values()):,} rows" in result.output
    assert "Audit trail intact" in result.output

    restored = _counts()
    assert restored == {**counts, "audit_entry": counts["audit_entry"] + 1}  # the restore is itself audited
    assert f"intact: {restored['audit_entry']:,} entries" in _audit_verifies()
    assert _export_all(tmp_path / "after") == before  # (each export audits its reads: more entries after)

    # Every table, not only what the exports show, holds what it held: a second backup has the same data.
    again = tmp_path / "again.backup"
    assert runner.invoke(app, ["backup", "--out", str(again)]).exit_code == 0
    first, second = _manifest(file), _manifest(again)
    for a, b in zip(first["tables"], second["tables"]):
        if a["name"] != "audit_entry":
            assert (a["name"], a["sha256"]) == (b["name"], b["sha256"])
    audit, original = _lines(again, "audit_entry"), _lines(file, "audit_entry")
    assert audit[:len(original)] == original and b'"backup.restored"' in audit[len(original)]

    # New rows continue after the restored ids (PostgreSQL's sequences were moved past them).
    with dbmod.transaction() as s:
        newest = s.scalar(select(func.max(Post.id)))
        assert post(s, w.alice, w.circle, "After the restore", at(5)).id == newest + 1


def test_a_backup_moves_between_sqlite_and_postgresql(postgres_database, tmp_path, monkeypatch):
    migrate_fresh(postgres_database)
    _study()
    before = _export_all(tmp_path / "before")
    from_postgres = tmp_path / "postgres.backup"
    assert runner.invoke(app, ["backup", "--out", str(from_postgres)]).exit_code == 0

    _use_database(monkeypatch, f"sqlite:///{tmp_path / 'moved.db'}")  # a file that does not exist yet
    result = runner.invoke(app, ["restore", str(from_postgres)])
    assert result.exit_code == 0, result.output
    assert "a postgresql backup" in result.output
    assert _export_all(tmp_path / "in-sqlite") == before
    _audit_verifies()
    from_sqlite = tmp_path / "sqlite.backup"
    assert runner.invoke(app, ["backup", "--out", str(from_sqlite)]).exit_code == 0

    _use_database(monkeypatch, postgres_database)
    _drop_everything()
    result = runner.invoke(app, ["restore", str(from_sqlite)])
    assert result.exit_code == 0, result.output
    assert "a sqlite backup" in result.output
    assert _export_all(tmp_path / "back-in-postgres") == before
    _audit_verifies()
    for a, b in zip(_manifest(from_postgres)["tables"], _manifest(from_sqlite)["tables"]):
        if a["name"] != "audit_entry":
            assert a["sha256"] == b["sha256"], a["name"]


def test_a_backup_is_one_snapshot_while_the_app_writes(database, tmp_path):
    migrate_fresh(database)
    with dbmod.transaction() as s:
        w = build_world(s)
    before = _counts()
    wrote = []

    def write_meanwhile(phase, table, rows, all_rows):
        if not wrote:  # while the first table is read, others are written and committed
            with dbmod.transaction() as s:
                post(s, w.alice, w.circle, "Written during the backup", at(1))
                identity.audit(s, w.admin.id, "during.backup")
            wrote.append(table)
        return lambda n: None

    file = tmp_path / "snap.backup"
    summary = backup(database, file, progress=write_meanwhile)
    assert wrote and _counts()["post"] == before["post"] + 1
    assert {t["name"]: t["rows"] for t in summary.manifest["tables"]} == before
    archive = open_backup(file)
    try:
        verify_data(archive, dbmod.Base.metadata.sorted_tables, lambda *a: (lambda n: None))
    finally:
        archive.zip.close()


def test_force_replaces_a_database_and_says_what_it_replaces(database, tmp_path):
    migrate_fresh(database)
    with dbmod.transaction() as s:
        w = build_world(s)
    file = tmp_path / "world.backup"
    assert runner.invoke(app, ["backup", "--out", str(file)]).exit_code == 0
    with dbmod.transaction() as s:
        post(s, w.alice, w.circle, "Written after the backup", at(1))
    counts = _counts()

    result = runner.invoke(app, ["restore", str(file)])
    assert result.exit_code == 1
    assert "is not empty" in result.output and "--force" in result.output and "Nothing was written" in result.output
    assert _counts() == counts

    result = runner.invoke(app, ["restore", str(file), "--force"])
    assert result.exit_code == 0, result.output
    assert f"replacing all {sum(counts.values()):,} rows" in result.output
    assert f"post: {counts['post']} row" in result.output and f"user_account: {counts['user_account']} rows" in result.output
    with dbmod.transaction(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Post).where(Post.body == "Written after the backup")) == 0
    _audit_verifies()


def test_a_row_pointing_at_a_later_row_of_its_own_table_is_restored(database, tmp_path):
    from peerlift.community.models import Comment

    migrate_fresh(database)
    with dbmod.transaction() as s:
        w = build_world(s)
        p = post(s, w.alice, w.circle, "A post", at(1))
        older, newer = comment(s, w.bob, w.circle, p, "first", at(1, 1)), comment(s, w.pat, w.circle, p, "second", at(1, 2))
        older.parent_id = newer.id  # rows inserted in id order meet this link before its target exists
    file = tmp_path / "links.backup"
    assert runner.invoke(app, ["backup", "--out", str(file)]).exit_code == 0
    _drop_everything()
    result = runner.invoke(app, ["restore", str(file)])
    assert result.exit_code == 0, result.output
    with dbmod.transaction(write=False) as s:
        assert s.get(Comment, older.id).parent_id == newer.id and s.get(Comment, newer.id).parent_id is None


# --- refused, with nothing written ----------------------------------------------------------------------

@pytest.fixture
def saved(database, tmp_path):
    """A backup of the world, and the database moved on since (a post written after the backup)."""
    migrate_fresh(database)
    with dbmod.transaction() as s:
        w = build_world(s)
        identity.audit(s, w.admin.id, "world.built")
    file = tmp_path / "world.backup"
    assert runner.invoke(app, ["backup", "--out", str(file)]).exit_code == 0
    with dbmod.transaction() as s:
        post(s, w.alice, w.circle, "Written after the backup", at(1))
    return file


def _rewrite(source: Path, target: Path, change) -> None:
    """Copy a backup, passing each member's (name, bytes) through ``change``."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, change(info.filename, zin.read(info.filename)))


def _manifest_with(**values):
    def change(name, data):
        if name != MANIFEST:
            return data
        return json.dumps({**json.loads(data), **values}).encode()
    return change


def _flip_inside(source: Path, target: Path, member: str) -> None:
    """Damage one byte in the middle of a member's compressed data."""
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as zf:
        info = zf.getinfo(member)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size // 2] ^= 0x55
    target.write_bytes(bytes(data))


def _member_of(path: Path, table: str) -> str:
    return next(e["file"] for e in _manifest(path)["tables"] if e["name"] == table)


def _bad_files(file: Path, tmp: Path) -> dict[str, tuple[Path, list[str]]]:
    made: dict[str, tuple[Path, list[str]]] = {}
    data = file.read_bytes()

    truncated = tmp / "truncated.backup"
    truncated.write_bytes(data[:len(data) // 2])
    made["truncated"] = (truncated, ["truncated or damaged"])

    tampered = tmp / "tampered.backup"
    _rewrite(file, tampered, lambda name, d: d.replace(b"Alice Archer", b"Alice Arched") if "user_account" in name else d)
    made["checksum"] = (tampered, ["table user_account does not match its checksum"])

    damaged = tmp / "damaged.backup"
    _flip_inside(file, damaged, _member_of(file, "audit_entry"))
    made["damaged"] = (damaged, ["table audit_entry"])

    older = tmp / "older.backup"
    _rewrite(file, older, _manifest_with(schema_revision="0009", peerlift_version="0.0.9"))
    made["revision"] = (older, ["schema revision 0009", f"revision {code_revision()}", "peerlift 0.0.9",
                                "then run `peerlift migrate`"])

    plain = tmp / "notes.txt"
    plain.write_text("not a backup\n")
    made["text"] = (plain, ["not a peerlift backup (not a zip file)"])

    other_zip = tmp / "photos.zip"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("photo.jpg", b"\xff\xd8\xff")
    made["zip"] = (other_zip, ["a zip file but not a peerlift backup"])

    export_zip = tmp / "export.zip"
    with zipfile.ZipFile(export_zip, "w") as zf:
        zf.writestr(MANIFEST, json.dumps({"study": {"slug": "trial"}, "format": "csv", "files": []}))
    made["export"] = (export_zip, ["not a peerlift backup (its manifest does not say 'peerlift-backup')"])

    newer = tmp / "newer.backup"
    _rewrite(file, newer, _manifest_with(format_version=FORMAT_VERSION + 1))
    made["format"] = (newer, [f"format version {FORMAT_VERSION + 1}"])

    made["missing"] = (tmp / "nowhere.backup", ["No file", "nowhere.backup"])
    return made


CASES = ["truncated", "checksum", "damaged", "revision", "text", "zip", "export", "format", "missing"]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_file_is_refused_and_nothing_is_overwritten(saved, tmp_path, case):
    (tmp_path / "bad").mkdir()
    path, messages = _bad_files(saved, tmp_path / "bad")[case]
    counts = _counts()
    result = runner.invoke(app, ["restore", str(path), "--force"])  # even forced
    assert result.exit_code == 1, result.output
    for message in messages:
        assert message in result.output, result.output
    assert "Nothing was written" in result.output
    assert _counts() == counts
    with dbmod.transaction(write=False) as s:
        assert s.scalar(select(Post.id).where(Post.body == "Written after the backup")) is not None


def test_a_bad_file_is_refused_before_an_empty_database_is_touched(saved, tmp_path):
    damaged = tmp_path / "damaged.backup"
    _flip_inside(saved, damaged, _member_of(saved, "event"))
    _drop_everything()
    result = runner.invoke(app, ["restore", str(damaged)])
    assert result.exit_code == 1 and "table event" in result.output
    assert inspect(dbmod.get_engine()).get_table_names() == []


def test_a_database_at_another_revision_is_refused(saved, tmp_path, database):
    _drop_everything()
    upgrade(database, "0010")
    result = runner.invoke(app, ["restore", str(saved)])
    assert result.exit_code == 1
    assert f"The database is at schema revision 0010; the backup and this peerlift are at {code_revision()}" \
        in result.output and "peerlift migrate" in result.output
    with dbmod.get_engine().connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0010"
        assert conn.execute(text("SELECT count(*) FROM user_account")).scalar() == 0


def test_a_failure_while_loading_rolls_everything_back(saved, database, monkeypatch):
    from peerlift import backup as backup_mod

    real = backup_mod._load_table

    def failing(session, dialect, table, entry, lines, advance):
        if table.name == "post":
            raise RuntimeError("disk on fire")
        return real(session, dialect, table, entry, lines, advance)

    monkeypatch.setattr(backup_mod, "_load_table", failing)
    _drop_everything()
    with pytest.raises(RuntimeError):
        backup_mod.restore(database, saved)
    assert inspect(dbmod.get_engine()).get_table_names() == []  # the migrations were undone too


def test_backup_refuses_an_unmigrated_database_and_an_existing_file(database, tmp_path):
    with dbmod.transaction() as s:
        build_world(s)  # tables made without Alembic: no schema revision to record
    file = tmp_path / "x.backup"
    result = runner.invoke(app, ["backup", "--out", str(file)])
    assert result.exit_code == 1 and "no schema revision" in result.output and "peerlift migrate" in result.output
    assert not file.exists() and list(tmp_path.glob(".x.backup*")) == []

    migrate_fresh(database)
    file.write_text("keep me")
    result = runner.invoke(app, ["backup", "--out", str(file)])
    assert result.exit_code == 1 and "exists" in result.output and "--force" in result.output
    assert file.read_text() == "keep me"
    assert runner.invoke(app, ["backup", "--out", str(file), "--force"]).exit_code == 0
    assert _manifest(file)["format"] == "peerlift-backup"


# --- values -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, value", [
    ("int", 2**63 - 1), ("int", -(2**63)), ("int", 10**30), ("int", 0),
    ("float", 0.1), ("float", 1e-300), ("float", -0.0), ("float", 79.5), ("float", 1 / 3),
    ("bool", True), ("bool", False),
    ("text", "ünïcode \u2028 line\nbreak \"quoted\" 🚶"), ("text", ""),
    ("json", '{"b": [1, 2.5, null], "a": "é"}'), ("json", "null"),
    ("datetime", dt.datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)),
    ("timestamp", dt.datetime(2026, 1, 31, 9, 0, 0, 1)),
    ("date", dt.date(2026, 2, 28)),
    ("bytes", b"\x00\xff\x10 binary \x00"),
    ("decimal", decimal.Decimal("12345678901234567890.000000001")),
])
def test_values_come_back_exactly(kind, value):
    line = json.dumps([encode(kind, value)], ensure_ascii=False, separators=(",", ":"))
    back = decode(kind, json.loads(line)[0])
    assert back == value and type(back) is type(value)
    if kind == "float":
        assert str(back) == str(value)  # -0.0 stays -0.0
    assert decode(kind, json.loads(json.dumps([encode(kind, None)]))[0]) is None


def test_times_are_written_in_utc_and_kinds_follow_the_column_types():
    paris = dt.timezone(dt.timedelta(hours=1))
    assert encode("datetime", dt.datetime(2026, 1, 1, 10, 0, tzinfo=paris)) == "2026-01-01T09:00:00.000000+00:00"
    table = Table("t", MetaData(), Column("a", BigInteger), Column("b", LargeBinary), Column("c", Numeric(20, 5)))
    assert [kind_of(c) for c in table.columns] == ["int", "bytes", "decimal"]
    assert kind_of(AuditEntry.__table__.c.at) == "datetime"
    with pytest.raises(ValueError):
        decode("int", True)
    with pytest.raises(ValueError):
        decode("bool", 1)


def test_the_file_is_a_zip_of_a_manifest_and_one_json_lines_file_per_table(saved):
    with zipfile.ZipFile(saved) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read(MANIFEST))
        users = zf.read(_member_of(saved, "user_account"))
    assert names[-1] == MANIFEST and len(names) == len(manifest["tables"]) + 1
    assert all(zipfile.ZipFile(saved).getinfo(n).compress_type == zipfile.ZIP_DEFLATED for n in names)
    assert set(manifest) >= {"format", "format_version", "peerlift_version", "schema_revision", "dialect",
                             "created_at", "tables", "totals"}
    entry = next(e for e in manifest["tables"] if e["name"] == "user_account")
    assert entry["rows"] == len(users.splitlines()) and entry["bytes"] == len(users)
    import hashlib

    assert entry["sha256"] == hashlib.sha256(users).hexdigest()
    first = json.loads(io.BytesIO(users).readline())
    assert first[0] == 1 and isinstance(first[0], int)
