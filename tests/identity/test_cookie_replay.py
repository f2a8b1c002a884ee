"""A session cookie copied before its session ended is worth nothing afterwards, and a cookie
that was never issued (or was altered) opens nothing."""

from __future__ import annotations

import pytest

from tests.conftest import assert_error


@pytest.mark.parametrize("ending", ["logout", "revoked from another device"])
def test_a_replayed_cookie_after_the_session_ended_is_refused(world, client_for, ending):
    alice = client_for(world.alice)
    stolen = alice.cookies.get("peerlift_session")
    assert stolen
    if ending == "logout":
        assert alice.post("/api/v1/auth/logout").status_code == 204
    else:
        other = client_for(world.alice)
        theirs = [s for s in other.get("/api/v1/me/sessions").json() if not s["current"]]
        assert len(theirs) == 1
        assert other.delete(f"/api/v1/me/sessions/{theirs[0]['id']}").status_code == 204
    thief = client_for(None)
    thief.cookies.set("peerlift_session", stolen)
    assert_error(thief.get("/api/v1/me"), 401)
    assert thief.get("/circles", follow_redirects=False).status_code in (302, 303)


def test_an_altered_cookie_is_refused(world, client_for):
    alice = client_for(world.alice)
    real = alice.cookies.get("peerlift_session")
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    thief = client_for(None)
    thief.cookies.set("peerlift_session", flipped)
    assert_error(thief.get("/api/v1/me"), 401)
    assert alice.get("/api/v1/me").status_code == 200  # the real one still works
