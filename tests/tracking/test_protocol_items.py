"""A protocol item of kind questionnaire asks for an answer: a request and a link to the form."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.community.models import Post
from peerlift.notify.models import Notification
from peerlift.tracking.models import QuestionnaireRequest
from tests.conftest import run_due

PROTOCOL = """\
id: check-ins
version: "1.0.0"
title: Check-ins
description: Questionnaires on day 1.
duration_days: 10
items:
  - id: phq9-each
    day: 1
    at: "09:00"
    channel: notification
    kind: questionnaire
    questionnaire: phq9
    text: Time for your check-in, {first_name}.
  - id: who5-circle
    day: 1
    at: "10:00"
    channel: circle_post
    kind: questionnaire
    questionnaire: who5
    text: A short wellbeing questionnaire for everyone.
"""


def test_questionnaire_items_create_requests_with_a_link(world, client_for):
    coach, alice = client_for(world.coach), client_for(world.alice)
    version = coach.post("/api/v1/protocols", json={"source": PROTOCOL}).json()
    start = dbmod.utcnow().date() + dt.timedelta(days=1)
    assert coach.post(f"/api/v1/circles/{world.circle.id}/assignments",
                      json={"protocol_version_id": version["id"], "start_date": start.isoformat()}).status_code == 201
    with dbmod.clock_at(dt.datetime.combine(start, dt.time(12, 0), tzinfo=dt.UTC)):
        run_due(times=50)
    with dbmod.transaction(write=False) as s:
        requests = s.scalars(select(QuestionnaireRequest).order_by(QuestionnaireRequest.id)).all()
        phq = [r for r in requests if r.instrument_key == "phq9"]
        who = [r for r in requests if r.instrument_key == "who5"]
        assert sorted(r.user_id for r in phq) == sorted([world.alice.id, world.bob.id, world.pat.id])
        assert sorted(r.user_id for r in who) == sorted([world.alice.id, world.bob.id, world.pat.id])
        assert {r.source for r in requests} == {"protocol"}
        mine = next(r for r in phq if r.user_id == world.alice.id)
        [note] = s.scalars(select(Notification).where(Notification.user_id == world.alice.id)).all()
        assert note.link == f"/questionnaires/{mine.id}"
        assert note.text == "Time for your check-in, Alice. (PHQ-9 questionnaire: open to answer)"
        post = s.scalar(select(Post).where(Post.author_id == world.coach.id))
        assert post.body.endswith("[Answer the WHO-5 questionnaire](/me/questionnaires)")
        assert 'href="/me/questionnaires"' in post.body_html
    # the link leads to the form, and the answer is stored once
    assert alice.get(f"/questionnaires/{mine.id}").status_code == 200
    done = alice.post(f"/api/v1/questionnaires/requests/{mine.id}/response", json={"answers": [0] * 9})
    assert done.status_code == 201 and done.json()["request_id"] == mine.id
