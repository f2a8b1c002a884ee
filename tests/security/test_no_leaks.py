"""Nothing leaks through lists, counts, notifications, the live stream, the inbox, escalations or a
study's analytics: what a subject may not open, no list shows them either. Each test has its
positive control (someone who may see it does), so a test that sees nothing cannot pass by accident."""

from __future__ import annotations

import re

import pytest

from peerlift.delivery.dispatch import Dispatcher
from peerlift.delivery.hub import hub
from tests.security.access_table import TABLE, requests_for
from tests.security.test_access_matrix import fill, outcome
from tests.sse import StreamReader

# Words only arm A's writing and names contain (tests/security/world.py and build_world).
ARM_A = ("Morning walk", "A hard week", "Walk on Saturday", "Which time?", "Same route", "Well done!",
         "quick question about Saturday", "Morning Movers", "Alice Archer", "Bob Baker", "Pat Peer")


@pytest.fixture
def fresh(arena):
    """The arena as built, and as built again after the test."""
    arena.restore()
    yield arena
    arena.restore()


def get(arena, subject: str, url: str, status: int = 200):
    response = arena.send(subject, "GET", url)
    assert response.status_code == status, f"{subject} GET {url}: {response.status_code} {response.text[:300]}"
    return response


def assert_nothing_of_arm_a(text: str, where: str) -> None:
    found = [word for word in ARM_A if word in text]
    assert not found, f"{where} shows arm A's {found}"


LISTS = ("/api/v1/circles", "/circles", "/api/v1/notifications", "/notifications", "/api/v1/conversations",
         "/messages", "/api/v1/inbox", "/inbox", "/api/v1/questionnaires/requests", "/me/questionnaires",
         "/api/v1/enrolments", "/api/v1/studies", "/studies", "/api/v1/tracking/entries", "/me/tracking",
         "/api/v1/me/sessions", "/profile")


def test_carols_lists_and_counts_show_nothing_of_arm_a(fresh):
    w = fresh.objects.world
    before = {c["id"]: c for c in get(fresh, "carol", "/api/v1/circles").json()}
    unread = get(fresh, "carol", "/api/v1/notifications").json()["unread_count"]
    carol_handle = get(fresh, "carol", "/api/v1/me").json()["handle"]
    bob_handle = get(fresh, "bob", "/api/v1/me").json()["handle"]
    # arm A is busy: a post mentioning carol (and bob), a comment, a reaction, a vote
    made = fresh.send("alice", "POST", f"/api/v1/circles/{w.circle.id}/posts",
                      json={"body": f"Morning walk with @{carol_handle} and @{bob_handle}?"})
    assert made.status_code == 201, made.text
    assert fresh.send("bob", "POST", f"/api/v1/posts/{made.json()['id']}/comments",
                      json={"body": "Well done! See you there."}).status_code == 201
    assert fresh.send("bob", "PUT", f"/api/v1/posts/{fresh.objects.post_id}/reactions/clap").status_code == 200

    circles = get(fresh, "carol", "/api/v1/circles").json()
    assert [c["id"] for c in circles] == [w.other_circle.id]
    assert circles[0]["unread_count"] == before[w.other_circle.id]["unread_count"]
    assert circles[0]["member_count"] == before[w.other_circle.id]["member_count"]
    assert get(fresh, "carol", "/api/v1/notifications").json()["unread_count"] == unread
    for url in LISTS + (f"/api/v1/circles/{w.other_circle.id}/posts", f"/circles/{w.other_circle.id}",
                        f"/api/v1/circles/{w.other_circle.id}/members", f"/circles/{w.other_circle.id}/members"):
        assert_nothing_of_arm_a(get(fresh, "carol", url).text, f"carol's {url}")
    # the control: bob was mentioned, and his circle counts the new post
    assert any(n["kind"] == "mention" for n in get(fresh, "bob", "/api/v1/notifications").json()["notifications"])
    assert "Morning walk" in get(fresh, "bob", f"/api/v1/circles/{w.circle.id}/posts").text


def test_carols_search_finds_nothing_of_arm_a(fresh):
    w, o = fresh.objects.world, fresh.objects
    for q in ("walk", "walking", "morning walk", "river", "hard week", "Saturday", "route", "done", "question",
              "time", "stride", "arm"):
        results = get(fresh, "carol", f"/api/v1/search?q={q}").json()["results"]
        assert all(hit["space_id"] == w.other_circle.id for hit in results), (q, results)
        assert_nothing_of_arm_a(str(results), f"carol's search for {q!r}")
        assert_nothing_of_arm_a(get(fresh, "carol", f"/search?q={q}").text, f"carol's search page for {q!r}")
        # Not even by naming arm A's circle.
        assert get(fresh, "carol", f"/api/v1/search?q={q}&space_id={w.circle.id}", 404)
    # the controls: carol finds her own arm's writing, and bob finds arm A's
    mine = get(fresh, "carol", "/api/v1/search?q=stride").json()["results"]
    assert {(h["kind"], h["id"]) for h in mine} == {("post", o.other_posts["post_id"]),
                                                   ("comment", o.other_posts["comment_id"])}
    found = get(fresh, "bob", "/api/v1/search?q=walk").json()["results"]
    assert o.post_id in [h["id"] for h in found if h["kind"] == "post"]
    assert all(h["space_id"] == w.circle.id for h in found)


def test_a_coach_of_another_circle_sees_none_of_circles_work(fresh):
    w, o = fresh.objects.world, fresh.objects
    for url in ("/api/v1/inbox?status=all", "/inbox", f"/api/v1/circles/{w.other_circle.id}/review",
                f"/circles/{w.other_circle.id}/review", "/api/v1/conversations", "/messages", "/circles",
                "/api/v1/circles"):
        assert_nothing_of_arm_a(get(fresh, "other_coach", url).text, f"other_coach's {url}")
    assert get(fresh, "other_coach", "/api/v1/inbox?status=all").json()["cards"] == []
    # the control: the coach of circle has the card about alice and the flagged post in the queue
    assert [c["id"] for c in get(fresh, "coach", "/api/v1/inbox").json()["cards"]] == [o.card_id]
    queue = get(fresh, "coach", f"/api/v1/circles/{w.circle.id}/review").json()
    assert o.review_item_id in [item["id"] for item in queue]


def test_a_clinician_of_another_circle_gets_none_of_its_escalations(fresh):
    o = fresh.objects
    for status in ("open", "resolved"):
        assert get(fresh, "other_clinician", f"/api/v1/escalations?status={status}").json() == []
    assert_nothing_of_arm_a(get(fresh, "other_clinician", "/safety/escalations").text, "other_clinician's escalations")
    assert [e["id"] for e in get(fresh, "clinician", "/api/v1/escalations").json()] == [o.escalation_id]
    assert [e["id"] for e in get(fresh, "admin", "/api/v1/escalations").json()] == [o.escalation_id]


def _frames_about_circle(frames, o) -> list:
    w = o.world
    arm_a_posts = {o.post_id, o.flagged_post_id, o.poll_post_id}
    return [f for f in frames if f.data.get("circle_id") == w.circle.id or f.data.get("post_id") in arm_a_posts
            or f.data.get("conversation_id") == o.conversation_id]


def test_the_stream_replays_nothing_of_arm_a_to_carol(fresh):
    o = fresh.objects
    with StreamReader(fresh.client("carol"), last_event_id=0) as carols:
        replayed = carols.collect(1.0)
    assert carols.status == 200
    assert replayed, "carol's own events are replayed"
    assert _frames_about_circle(replayed, o) == []
    assert all(f.data.get("circle_id") in (None, o.world.other_circle.id) for f in replayed)
    with StreamReader(fresh.client("bob"), last_event_id=0) as bobs:
        assert _frames_about_circle(bobs.collect(1.0), o), "bob's replay has circle's events"


def test_the_live_stream_carries_nothing_of_arm_a_to_carol(fresh):
    w, o = fresh.objects.world, fresh.objects
    dispatcher = Dispatcher(hub)
    dispatcher.start(None)
    try:
        with StreamReader(fresh.client("carol")) as carols:
            with StreamReader(fresh.client("bob")) as bobs:
                made = fresh.send("alice", "POST", f"/api/v1/circles/{w.circle.id}/posts",
                                  json={"body": "Morning walk, live."})
                assert made.status_code == 201, made.text
                fresh.send("coach", "POST", f"/api/v1/conversations/{o.conversation_id}/messages",
                           json={"body": "Saturday it is."})
                bobs.wait_for("post.created", post_id=made.json()["id"])
                seen = carols.collect(1.0)
    finally:
        dispatcher.stop()
    assert [f for f in seen if f.data.get("circle_id") == w.circle.id or f.data.get("post_id") == made.json()["id"]
            or f.data.get("conversation_id") == o.conversation_id] == []


def test_a_researcher_of_another_study_sees_nothing_of_the_trial(fresh):
    w = fresh.objects.world
    studies = get(fresh, "other_researcher", "/api/v1/studies").json()
    assert [s["slug"] for s in studies] == ["another"]
    assert "A test trial" not in get(fresh, "other_researcher", "/studies").text
    # A study's data leaves peerlift through its metrics, dashboard, charts, enrolments and fidelity;
    # the full export is the operator's `peerlift export` command, which no web route offers.
    for url in (f"/api/v1/studies/{w.study.id}", f"/api/v1/studies/{w.study.id}/metrics",
                f"/api/v1/studies/{w.study.id}/enrolments", f"/studies/{w.study.id}", "/studies/trial/dashboard",
                "/studies/trial/dashboard/consort.svg", f"/api/v1/arms/{w.arm_a.id}/fidelity",
                f"/api/v1/circles/{w.circle.id}/fidelity", f"/api/v1/circles/{w.circle.id}/assignments",
                f"/circles/{w.circle.id}/protocol"):
        get(fresh, "other_researcher", url, status=404)
    # The one web export is a person's own data download; tests/privacy/test_export.py shows it holds
    # nobody else's data. Any other export route needs its leak test here.
    assert [r for r in TABLE if "export" in r] == ["GET /api/v1/me/export"], "an export route needs its leak test"
    # the control: the trial's researcher gets its metrics, with its participants
    metrics = get(fresh, "researcher", f"/api/v1/studies/{w.study.id}/metrics").json()
    assert metrics["study"] == "trial" and metrics["participants"]


# --- objects of another circle answer 404, never 403 ------------------------------------------------

CIRCLE_PARAMS = {"circle_id", "post_id", "comment_id", "poll_id", "kind"}
MIRRORED = [r for r in TABLE if "{" in r and set(re.findall(r"{(\w+)}", r)) <= CIRCLE_PARAMS]


class _OtherCircle:
    """The objects of ``other_circle`` (arm B) under the names routes use."""

    def __init__(self, objects) -> None:
        self.objects = objects

    @property
    def ids(self):
        o = self.objects
        return {"circle_id": o.world.other_circle.id, "post_id": o.other_posts["post_id"],
                "comment_id": o.other_posts["comment_id"], "poll_id": o.other_posts["poll_id"], "kind": "heart"}

    def token_for(self, path):
        raise AssertionError(path)


@pytest.mark.parametrize("route", MIRRORED)
def test_arm_b_objects_answer_404_to_arm_a(arena, route):
    """The mirror of the matrix: circle's members (the coach aside, who facilitates both circles)
    asking for arm B's circle, post, comment or poll get a 404, and nothing changes."""
    method, path = route.split(" ", 1)
    url = fill(path, _OtherCircle(arena.objects))
    kwargs = requests_for(arena.objects).get(route, {})
    wrong = []
    for subject in ("alice", "bob", "pat", "clinician"):
        arena.restore()
        got = outcome(arena.send(subject, method, url, **kwargs))
        changed = arena.changed_tables()
        if got != "404" or changed:
            wrong.append(f"{subject}: {got}" + (f", and wrote {changed}" if changed else ""))
    arena.restore()
    assert not wrong, f"{route} ({url}): " + "; ".join(wrong)
