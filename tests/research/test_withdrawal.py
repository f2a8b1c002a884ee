"""Withdrawal at any time: recorded with time and reason, the stated data rule applied, out of
the study's circles, and no further programme messages."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from markupsafe import escape
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.community.models import Comment, Membership, Post, PostRevision
from peerlift.delivery.models import DeliveryStatus, ScheduledDelivery
from peerlift.identity.models import User
from peerlift.protocols.models import PlannedDelivery, PlannedStatus
from peerlift.research import service
from peerlift.research.models import Enrolment, EnrolmentStatus
from tests.conftest import assert_error, count_rows, form_token, post
from tests.research.helpers import consented, make_study, participant

DAILY = """\
id: daily-walk
version: "1.0.0"
title: Daily walk
description: A daily question about the walk.
duration_days: 28
items:
  - id: evening
    days: 1-28
    at: "12:00"
    channel: notification
    audience: each_member
    text: "{first_name}, how was your walk today?"
"""


def _randomised(world, rule: str):
    from peerlift.protocols import service as protocols

    with dbmod.transaction() as s:
        setup = make_study(s, world, withdrawal_rule=rule)
        version = protocols.register(s, DAILY, world.researcher)
        for arm in setup.arms:
            service.set_arm_protocol(s, world.researcher, setup.study, arm.id, version.id,
                                     dbmod.utcnow().date())
        person = participant(s, "Wendy Walker")
        enrolment = consented(s, setup, person)
        service.randomise(s, person, enrolment)
        return setup, person, enrolment.id, enrolment.space_id


@pytest.mark.parametrize("rule", ["keep", "delete"])
def test_withdrawal_from_the_profile_page(client_for, world, rule):
    setup, wendy, enrolment_id, circle_id = _randomised(world, rule)
    c = client_for(wendy)
    c.post(f"/api/v1/circles/{circle_id}/rules/accept")
    mine = post(c, SimpleNamespace(id=circle_id), "My first walk was lovely.")
    assert mine.status_code == 201, mine.text
    c.patch(f"/api/v1/posts/{mine.json()['id']}", json={"body": "My first walk was lovely, really."})
    other = with_member_post(world, setup, circle_id)
    comment = c.post(f"/api/v1/posts/{other}/comments", json={"body": "Well done!"})
    assert comment.status_code == 201, comment.text
    planned = count_rows(PlannedDelivery, PlannedDelivery.user_id == wendy.id,
                         PlannedDelivery.status == PlannedStatus.planned)
    assert planned > 0  # the programme has messages planned for her

    profile = c.get("/profile")
    assert "Leave this study" in profile.text
    form = c.get(f"/enrolments/{enrolment_id}/withdraw")
    rule_text = str(escape(service.withdrawal_rule_text(rule)))
    assert rule_text in form.text and f'data-rule="{rule}"' in form.text
    token = form_token(form.text)
    # not confirmed: nothing happens
    refused = c.post(f"/enrolments/{enrolment_id}/withdraw", data={"csrf_token": token, "reason": "Moving away"})
    assert refused.status_code == 422 and "Confirm that you have read" in refused.text
    assert count_rows(Enrolment, Enrolment.status == EnrolmentStatus.randomised) == 1
    done = c.post(f"/enrolments/{enrolment_id}/withdraw", data={"csrf_token": token, "reason": "Moving away",
                                                               "confirm": "true"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/profile?withdrawn=1"

    with dbmod.transaction(write=False) as s:
        e = s.get(Enrolment, enrolment_id)
        assert e.status == EnrolmentStatus.withdrawn and e.withdrawn_at is not None
        assert e.withdrawal_reason == "Moving away" and e.withdrawal_data == rule
        assert s.scalar(select(Membership).where(Membership.user_id == wendy.id,
                                                 Membership.space_id == circle_id)) is None
        assert not s.scalars(select(PlannedDelivery).where(PlannedDelivery.user_id == wendy.id,
                                                           PlannedDelivery.status == PlannedStatus.planned)).all()
        cancelled = s.scalars(select(PlannedDelivery).where(PlannedDelivery.user_id == wendy.id)).all()
        assert len(cancelled) == planned and all(p.status == PlannedStatus.cancelled for p in cancelled)
        jobs = [p.scheduled_delivery_id for p in cancelled]
        assert all(j.status == DeliveryStatus.skipped for j in s.scalars(
            select(ScheduledDelivery).where(ScheduledDelivery.id.in_(jobs))))
        my_post = s.get(Post, mine.json()["id"])
        my_comment = s.get(Comment, comment.json()["id"])
        parent = s.get(Post, other)
        if rule == "keep":
            assert my_post.deleted_at is None and "lovely" in my_post.body and my_comment.body == "Well done!"
            assert parent.comment_count == 1
        else:
            assert my_post.deleted_at is not None and my_post.body == "" and my_post.body_html == ""
            assert my_comment.deleted_at is not None and my_comment.body == ""
            assert s.scalar(select(PostRevision).where(PostRevision.post_id == my_post.id)) is None
            assert parent.comment_count == 0 and parent.deleted_at is None  # other people's writing stays
    # she no longer sees the circle; the study's people no longer count her in
    assert_error(c.get(f"/api/v1/circles/{circle_id}"), 404)
    assert "You have left the study" in c.get("/profile?withdrawn=1").text
    again = c.post(f"/api/v1/enrolments/{enrolment_id}/withdraw", json={"confirm": True})
    assert_error(again, 409, "wrong_step")


def with_member_post(world, setup, circle_id) -> int:
    """The coach joins Wendy's circle and writes a post there."""
    from peerlift.community.models import CircleRole, Space
    from peerlift.community.service import accept_rules, add_member, create_post
    from peerlift.policy import circle_access

    with dbmod.transaction() as s:
        coach = s.get(User, world.coach.id)
        add_member(s, world.admin, s.get(Space, circle_id), coach, CircleRole.facilitator)
        access = circle_access(s, coach, circle_id)
        accept_rules(s, access)
        return create_post(s, access, "Who walks on Sunday?").id


def test_withdrawal_api_needs_confirmation_and_only_the_person(client_for, world):
    setup, wendy, enrolment_id, _circle = _randomised(world, "keep")
    c = client_for(wendy)
    assert_error(c.post(f"/api/v1/enrolments/{enrolment_id}/withdraw", json={"reason": "x"}), 422, "invalid",
                 "confirm")
    assert_error(client_for(world.researcher).post(f"/api/v1/enrolments/{enrolment_id}/withdraw",
                                                  json={"confirm": True}), 404)
    assert count_rows(Enrolment, Enrolment.status == EnrolmentStatus.randomised) == 1
    ok = c.post(f"/api/v1/enrolments/{enrolment_id}/withdraw", json={"confirm": True})
    assert ok.status_code == 200 and ok.json()["status"] == "withdrawn" and ok.json()["withdrawal_reason"] == ""


def test_withdrawal_before_randomisation(session, world):
    setup = make_study(session, world)
    person = participant(session)
    enrolment = service.start_enrolment(session, person, setup.token)
    service.withdraw(session, person, enrolment, reason="Changed my mind", confirm=True)
    assert enrolment.status == EnrolmentStatus.withdrawn and enrolment.withdrawal_reason == "Changed my mind"
