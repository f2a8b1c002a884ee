"""The contamination guard: a participant of one arm never joins, sees, messages or is mentioned
from another arm's circles. Randomised participants of a study are used throughout."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.community.models import Membership, Mention, Space
from peerlift.community.service import Contamination, add_member
from peerlift.identity.models import User
from peerlift.notify.models import Notification
from peerlift.research import service
from tests.conftest import assert_error, count_rows, post
from tests.research.helpers import consented, make_study, participant


@pytest.fixture
def two_arms(world):
    """Two randomised participants, one in each arm (the sequence decides; we enrol until both
    arms have someone), and a member-DM circle on each side."""
    with dbmod.transaction() as s:
        setup = make_study(s, world)
        for circles in setup.circles.values():
            for circle in circles:
                circle.allow_member_dms = True
        by_arm: dict[int, User] = {}
        while len(by_arm) < 2:
            person = participant(s)
            e = consented(s, setup, person)
            service.randomise(s, person, e)
            by_arm.setdefault(e.arm_id, person)
        (arm_x, x), (arm_y, y) = sorted(by_arm.items())
        circle_x = setup.circles[arm_x][0]
        circle_y = setup.circles[arm_y][0]
        return SimpleNamespace(x=x, y=y, circle_x=circle_x, circle_y=circle_y, setup=setup)


def test_join_another_arms_circle_is_refused(two_arms, world):
    t = two_arms
    with pytest.raises(Contamination) as caught:
        with dbmod.transaction() as s:
            add_member(s, world.admin, s.get(Space, t.circle_y.id), s.get(User, t.x.id))
    assert caught.value.field == "user_id" and caught.value.status_code == 409
    assert count_rows(Membership, Membership.user_id == t.x.id) == 1


def test_see_another_arms_circle_answers_404(two_arms, client_for):
    t = two_arms
    x = client_for(t.x)
    assert x.get(f"/api/v1/circles/{t.circle_x.id}").status_code == 200
    assert_error(x.get(f"/api/v1/circles/{t.circle_y.id}"), 404, field="circle_id")
    assert_error(x.get(f"/api/v1/circles/{t.circle_y.id}/posts"), 404)
    assert x.get(f"/circles/{t.circle_y.id}").status_code == 404
    y = client_for(t.y)
    y.post(f"/api/v1/circles/{t.circle_y.id}/rules/accept")
    made = post(y, t.circle_y, "Arm Y only: our secret walking route.")
    assert made.status_code == 201
    assert_error(x.get(f"/api/v1/posts/{made.json()['id']}"), 404)
    assert "secret walking route" not in x.get("/circles").text


def test_message_across_arms_answers_403(two_arms, client_for, world):
    """Even sharing an ordinary circle that allows member messages, people of two arms of one
    study cannot message each other; the coach of both arms can message either."""
    from peerlift.community.models import Conversation
    from tests.factories import create_circle

    t = two_arms
    x = client_for(t.x)
    # no shared circle: the other person is not even visible
    assert_error(x.post("/api/v1/conversations", json={"user_id": t.y.id}), 404, field="user_id")
    with dbmod.transaction() as s:
        lobby = create_circle(s, world.admin, "Open lobby", allow_member_dms=True)
        for person in (t.x, t.y):
            add_member(s, world.admin, lobby, s.get(User, person.id))
    assert_error(x.post("/api/v1/conversations", json={"user_id": t.y.id}), 403, field="user_id")
    assert_error(client_for(t.y).post("/api/v1/conversations", json={"user_id": t.x.id}), 403, field="user_id")
    assert count_rows(Conversation) == 0
    with dbmod.transaction() as s:
        friend = participant(s, "Lou Lobby")
        add_member(s, world.admin, s.get(Space, lobby.id), friend)
    assert x.post("/api/v1/conversations", json={"user_id": friend.id}).status_code == 201  # not in the study
    with dbmod.transaction() as s:
        from peerlift.community.models import CircleRole

        for circle in (t.circle_x, t.circle_y):
            add_member(s, world.admin, s.get(Space, circle.id), s.get(User, world.coach.id), CircleRole.facilitator)
    assert x.post("/api/v1/conversations", json={"user_id": world.coach.id}).status_code == 201


def test_mention_across_arms_is_neither_linked_nor_notified(two_arms, client_for):
    t = two_arms
    x = client_for(t.x)
    x.post(f"/api/v1/circles/{t.circle_x.id}/rules/accept")
    made = post(x, t.circle_x, f"Thinking of @{t.y.handle} today.")
    assert made.status_code == 201, made.text
    body = made.json()
    assert "mention" not in body["body_html"] and f"@{t.y.handle}" in body["body_html"]
    with dbmod.transaction(write=False) as s:
        assert s.scalars(select(Mention).where(Mention.user_id == t.y.id)).all() == []
        assert s.scalars(select(Notification).where(Notification.user_id == t.y.id)).all() == []
    # a member of the same arm and circle is linked and notified (the guard is not blanket)
    with dbmod.transaction() as s:
        friend = participant(s, "Frida Friend")
        add_member(s, s.get(User, t.x.id), s.get(Space, t.circle_x.id), friend)
    made = post(x, t.circle_x, f"Welcome @{friend.handle}!")
    assert 'class="mention"' in made.json()["body_html"]
    assert count_rows(Mention, Mention.user_id == friend.id) == 1
