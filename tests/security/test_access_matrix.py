"""The access matrix: every route of the app, as every subject, against tests/security/access_table.py.

Each route's test sends its request once per subject, collects every difference from the table, and
fails with all of them in one readable table. A refused write must leave the database as it was;
an object of another circle must answer 404, never 403."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route

from peerlift.app import iter_routes
from tests.security.access_table import OUTSIDERS, SUBJECTS, TABLE, requests_for

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
REFUSED = {"login", "403", "404"}
# Path parameters that name something inside a circle: outsiders must get 404 for them, never 403.
CIRCLE_OBJECTS = {"circle_id", "post_id", "comment_id", "poll_id", "conversation_id", "message_id",
                  "review_item_id", "item_id", "card_id", "escalation_id", "request_id", "assignment_id"}


def app_routes() -> list[str]:
    """``METHOD /path`` of every route the app serves (the static files' mount aside)."""
    from peerlift.app import create_app

    found = []
    for route in iter_routes(create_app()):
        if isinstance(route, (APIRoute, Route)):
            found += [f"{method} {route.path}" for method in sorted(route.methods)]
    return found


def test_every_route_has_a_row_in_the_table():
    routes = app_routes()
    missing = [r for r in routes if r not in TABLE]
    stale = [r for r in TABLE if r not in routes]
    assert not missing, ("Routes without a rule in tests/security/access_table.py TABLE; add a row for each:\n"
                         + "\n".join(f'    "{r}": <rule>,' for r in missing))
    assert not stale, "Rows of TABLE for routes the app no longer has:\n" + "\n".join(stale)
    assert len(set(routes)) == len(routes)


def test_every_row_states_every_subject():
    for route, expected in TABLE.items():
        assert set(expected) == set(SUBJECTS), route
        assert set(expected.values()) <= {"ok", "noop", "login", "403", "404"}, route


def outcome(response) -> str:
    status = response.status_code
    location = response.headers.get("location", "")
    if status == 401 or (status in (302, 303, 307) and location.startswith("/login?next=")):
        return "login"
    if status == 403 and "CSRF" in response.text:
        return "csrf"  # the test sends tokens: this would be a fault of the test, not access
    if 200 <= status < 400:
        return "ok"
    return str(status)


def matches(expected: str, got: str, method: str) -> bool:
    if expected in ("ok", "noop") and method in WRITES:
        return got not in REFUSED | {"csrf", "405"} and not got.startswith("5")
    if expected == "noop":
        return got == "ok"
    return got == expected


def fill(path: str, objects) -> str:
    ids = objects.ids
    return re.sub(r"{(\w+)}", lambda m: str(objects.token_for(path) if m.group(1) == "token" else ids[m.group(1)]),
                  path)


def stream_outcome(arena, subject: str) -> str:
    """The live stream never ends by itself: read the status and hang up."""
    with arena.stream(subject) as response:
        return outcome(response)


@pytest.mark.parametrize("route", list(TABLE))
def test_route(arena, route):
    method, path = route.split(" ", 1)
    expected = TABLE[route]
    url = fill(path, arena.objects)
    kwargs = requests_for(arena.objects).get(route, {})
    write = method in WRITES
    rows = []
    for subject in SUBJECTS:
        if path == "/api/v1/stream":
            got, detail = stream_outcome(arena, subject), ""
        else:
            if write:
                arena.restore()  # from the world as built (a no-op when nothing wrote)
            response = arena.send(subject, method, url, **kwargs)
            got = outcome(response)
            detail = f"{response.status_code} {response.text[:120]!r}" if got != "ok" else str(response.status_code)
        want = expected[subject]
        if not matches(want, got, method):
            rows.append((subject, want, got, detail))
            continue
        if write and (got in REFUSED or want == "noop"):
            changed = arena.changed_tables()
            if changed:
                rows.append((subject, want, f"{got}, but wrote", ", ".join(changed)))
        names = set(re.findall(r"{(\w+)}", path))
        if subject in OUTSIDERS and got == "403" and names & CIRCLE_OBJECTS:
            rows.append((subject, want, "403 for another circle's object", "must be 404"))
    if write:
        arena.restore()
    if rows:
        width = max(len(s) for s, *_ in rows)
        table = "\n".join(f"  {s:<{width}}  expected {w:<6} got {g:<8} {d}" for s, w, g, d in rows)
        pytest.fail(f"{route} ({url}):\n{table}", pytrace=False)


def test_the_arena_sees_a_write_and_puts_the_world_back(arena):
    """The 'nothing changed' check of refused writes can fail: a write is seen, and undone."""
    w = arena.objects.world
    arena.restore()
    assert arena.changed_tables() == []
    made = arena.send("alice", "POST", f"/api/v1/circles/{w.circle.id}/posts", json={"body": "Seen?"})
    assert made.status_code == 201, made.text
    assert {"post", "event"} <= set(arena.changed_tables())
    arena.restore()
    assert arena.changed_tables() == [] and arena.fingerprint() == arena.baseline
    assert arena.send("alice", "GET", f"/api/v1/posts/{made.json()['id']}").status_code == 404
