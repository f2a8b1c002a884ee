"""The audit trail is hash-chained: a changed or removed entry is found and named."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from peerlift import db as dbmod
from peerlift.cli import app
from peerlift.identity import service as identity
from peerlift.identity.audit import GENESIS, verify
from peerlift.identity.models import AuditEntry

runner = CliRunner()


def _write(n: int, start: int = 0) -> None:
    for i in range(n):
        with dbmod.transaction() as s:
            identity.audit(s, None, "test.action", "thing", start + i, detail=f"entry {start + i}")


def test_entries_are_chained_in_commit_order_and_verify(database):
    _write(5)
    with dbmod.transaction() as s:
        identity.audit(s, None, "two.in.one", "thing", 98)
        identity.audit(s, None, "two.in.one", "thing", 99)
    with dbmod.transaction(write=False) as s:
        rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        assert rows[0].prev_hash == GENESIS
        assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))
        assert verify(s) == (7, None)
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "intact: 7 entries" in result.output


def test_a_rolled_back_unit_leaves_no_entry(database):
    try:
        with dbmod.transaction() as s:
            identity.audit(s, None, "never", "thing", 1)
            raise RuntimeError("the unit fails")
    except RuntimeError:
        pass
    with dbmod.transaction(write=False) as s:
        assert s.scalar(select(AuditEntry.id)) is None


def test_a_changed_entry_is_named(database):
    _write(6)
    with dbmod.transaction() as s:
        third = s.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).all()[2]
        s.execute(update(AuditEntry).where(AuditEntry.id == third).values(detail="nothing happened here"))
    with dbmod.transaction(write=False) as s:
        checked, broken = verify(s)
    assert checked == 2 and broken.entry_id == third and broken.problem == "this entry was changed"
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and f"broken at entry {third}" in result.output


def test_a_removed_entry_is_found_at_the_next(database):
    _write(6)
    with dbmod.transaction() as s:
        ids = s.scalars(select(AuditEntry.id).order_by(AuditEntry.id)).all()
        s.execute(delete(AuditEntry).where(AuditEntry.id == ids[3]))
    with dbmod.transaction(write=False) as s:
        checked, broken = verify(s)
    assert checked == 3 and broken.entry_id == ids[4] and "changed or removed" in broken.problem


def test_failed_sign_ins_are_throttled_per_account_and_per_address(world, client_for, monkeypatch):
    from peerlift.identity.models import LoginFailure
    from peerlift.settings import get_settings
    from tests.conftest import PASSWORD, assert_error, count_rows

    monkeypatch.setenv("PEERLIFT_LOGIN_FAILURES_PER_ACCOUNT", "3")
    monkeypatch.setenv("PEERLIFT_LOGIN_FAILURES_PER_ADDRESS", "5")
    get_settings.cache_clear()
    client = client_for()
    wrong = {"email": world.alice.email, "password": "not her password"}
    for _ in range(3):
        assert_error(client.post("/api/v1/auth/login", json=wrong), 401)
    assert count_rows(LoginFailure) == 3
    # Locked for the window: even the right password is not tried.
    assert_error(client.post("/api/v1/auth/login", json={**wrong, "password": PASSWORD}), 429, "too_many_attempts")
    # Another account from the same address: the address limit (5) comes next.
    other = {"email": world.bob.email, "password": "wrong again"}
    for _ in range(2):
        assert_error(client.post("/api/v1/auth/login", json=other), 401)
    assert_error(client.post("/api/v1/auth/login", json={**other, "password": PASSWORD}), 429, "too_many_attempts")
    with dbmod.transaction(write=False) as s:
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.action == "login.failed").limit(1))
    # After the window the account can sign in again.
    from peerlift.db import clock_at, utcnow
    import datetime as dt

    with clock_at(utcnow() + dt.timedelta(minutes=16)):
        assert client.post("/api/v1/auth/login", json={**wrong, "password": PASSWORD}).status_code == 200
    get_settings.cache_clear()


def test_people_list_and_revoke_their_own_sessions(world, client_for, monkeypatch):
    from tests.conftest import assert_error

    laptop, phone = client_for(world.alice), client_for(world.alice)
    listed = laptop.get("/api/v1/me/sessions").json()
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    other = next(s for s in listed if not s["current"])
    assert_error(client_for(world.bob).delete(f"/api/v1/me/sessions/{other['id']}"), 404)
    assert laptop.delete(f"/api/v1/me/sessions/{other['id']}").status_code == 204
    assert_error(phone.get("/api/v1/me"), 401)
    assert laptop.get("/api/v1/me").status_code == 200
    page = laptop.get("/profile/sessions")
    assert page.status_code == 200 and "this browser" in page.text


def test_hsts_is_sent_when_served_over_https(database, monkeypatch):
    from fastapi.testclient import TestClient

    from peerlift.app import create_app
    from peerlift.settings import get_settings

    assert "strict-transport-security" not in TestClient(create_app()).get("/login").headers
    monkeypatch.setenv("PEERLIFT_SECURE_COOKIES", "true")
    get_settings.cache_clear()
    headers = TestClient(create_app(), base_url="https://testserver").get("/login").headers
    assert headers["strict-transport-security"].startswith("max-age=31536000")
    get_settings.cache_clear()
