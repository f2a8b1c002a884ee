"""Questions in communities: answers from verified professionals, marked and with the disclaimer; the
asker accepts one; a question that triages red or crisis goes to escalation instead of waiting."""

from __future__ import annotations

from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.community.models import Comment, Post
from peerlift.events import Event
from peerlift.notify.models import Notification
from peerlift.safety.models import Escalation
from peerlift.settings import get_settings
from tests.conftest import assert_error, count_rows, form_token
from tests.professionals.helpers import answer, ask, community_with_a_nurse, verified


def _setting_up(world, client_for):
    nina, space, nurse, alice, bob = community_with_a_nurse(world, client_for)
    verified(nina, world.admin)
    return nina, space, nurse, alice, bob


def test_a_question_for_professionals_waits_until_a_professional_answers(world, client_for):
    nina, space, nurse, alice, bob = _setting_up(world, client_for)
    question = ask(alice, space["id"], for_professionals=True)
    assert (question["is_question"], question["for_professionals"], question["can_accept"]) == (True, True, True)
    assert bob.get(f"/api/v1/posts/{question['id']}").json()["can_accept"] is False
    awaiting = f"/api/v1/communities/{space['id']}/awaiting-professional"
    assert [p["id"] for p in nurse.get(awaiting).json()] == [question["id"]]
    assert "Questions awaiting a professional" in nurse.get(f"/circles/{space['id']}").text
    # a peer's answer does not end the wait
    peer = answer(bob, question["id"], "Mine was 52 at first.")
    assert peer.status_code == 201 and peer.json()["as_professional"] is False and peer.json()["disclaimer"] is None
    assert [p["id"] for p in nurse.get(awaiting).json()] == [question["id"]]
    assert question["id"] in [int(x) for x in _ids(nurse.get(f"/communities/{space['id']}/awaiting").text)]
    marked = answer(nurse, question["id"], as_professional=True)
    assert marked.status_code == 201, marked.text
    body = marked.json()
    assert (body["as_professional"], body["professional_answer"]) == (True, "nurse")
    assert body["disclaimer"] == get_settings().answer_disclaimer
    assert nurse.get(awaiting).json() == []
    # the asker hears of the answer; the live stream carries the mark
    assert count_rows(Notification, Notification.user_id == world.alice.id, Notification.kind == "reply",
                      Notification.comment_id == body["id"]) == 1
    with dbmod.transaction(write=False) as s:
        event = s.scalar(select(Event).where(Event.kind == "comment.created", Event.object_id == body["id"]))
    assert event.data["as_professional"] is True
    page = alice.get(f"/posts/{question['id']}").text
    assert "Answer from a verified nurse" in page and get_settings().answer_disclaimer in page


def _ids(html: str) -> list[str]:
    import re

    return re.findall(r'data-post-id="(\d+)"', html)


def test_an_unverified_person_cannot_answer_as_a_professional(world, client_for):
    _nina, space, _nurse, alice, bob = _setting_up(world, client_for)
    question = ask(alice, space["id"], for_professionals=True)
    comments, events = count_rows(Comment), count_rows(Event)
    error = assert_error(answer(bob, question["id"], as_professional=True), 403, "forbidden", "as_professional")
    assert "verified professionals" in error["message"]
    assert count_rows(Comment) == comments and count_rows(Event) == events
    with dbmod.transaction(write=False) as s:
        assert s.get(Post, question["id"]).comment_count == 0
    page = bob.get(f"/posts/{question['id']}")
    assert "Answer as a verified" not in page.text
    refused = bob.post(f"/posts/{question['id']}/comments",
                       data={"csrf_token": form_token(page.text), "body": "Trust me.", "as_professional": "true"})
    assert refused.status_code == 403 and count_rows(Comment) == comments


def test_a_professional_answer_answers_a_question_itself(world, client_for):
    _nina, space, nurse, alice, _bob = _setting_up(world, client_for)
    statement = alice.post(f"/api/v1/communities/{space['id']}/posts", json={"body": "Walked 5 km today."}).json()
    before = count_rows(Comment)
    assert_error(answer(nurse, statement["id"], as_professional=True), 422, "invalid", "as_professional")
    question = ask(alice, space["id"])
    first = answer(alice, question["id"], "Also: does it change with exercise?").json()
    assert_error(answer(nurse, question["id"], parent_id=first["id"], as_professional=True),
                 422, "invalid", "as_professional")
    assert count_rows(Comment) == before + 1


def test_the_asker_accepts_an_answer_and_can_change_their_mind(world, client_for):
    nina, space, nurse, alice, bob = _setting_up(world, client_for)
    question = ask(alice, space["id"], for_professionals=True)
    peer = answer(bob, question["id"], "Mine was 52 at first.").json()
    pro = answer(nurse, question["id"], as_professional=True).json()
    url = f"/api/v1/posts/{question['id']}/accepted-answer"
    accepted = alice.put(url, json={"comment_id": pro["id"]})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["accepted_comment_id"] == pro["id"]
    thread = alice.get(f"/api/v1/posts/{question['id']}/comments").json()
    assert [(c["id"], c["accepted"]) for c in thread] == [(pro["id"], True), (peer["id"], False)]
    assert count_rows(Notification, Notification.user_id == nina.id, Notification.kind == "answer_accepted") == 1
    assert alice.put(url, json={"comment_id": peer["id"]}).json()["accepted_comment_id"] == peer["id"]
    assert count_rows(Notification, Notification.user_id == world.bob.id, Notification.kind == "answer_accepted") == 1
    assert alice.put(url, json={"comment_id": None}).json()["accepted_comment_id"] is None
    # and through the page, without JavaScript
    page = alice.get(f"/posts/{question['id']}").text
    assert "Accept this answer" in page
    done = alice.post(f"/posts/{question['id']}/accept", data={"csrf_token": form_token(page),
                                                                "comment_id": str(pro["id"])},
                      follow_redirects=False)
    assert done.status_code == 303
    page = alice.get(f"/posts/{question['id']}").text
    assert "Accepted answer" in page and "Unaccept" in page
    # deleting the accepted answer leaves the question without one
    assert nurse.delete(f"/api/v1/comments/{pro['id']}").status_code == 204
    assert alice.get(f"/api/v1/posts/{question['id']}").json()["accepted_comment_id"] is None


def test_accepting_is_for_the_asker_and_their_question_only(world, client_for):
    _nina, space, nurse, alice, bob = _setting_up(world, client_for)
    question = ask(alice, space["id"])
    other = ask(bob, space["id"], "Does metformin upset everyone's stomach?")
    pro = answer(nurse, question["id"], as_professional=True).json()
    on_other = answer(nurse, other["id"], "Often at first; it usually settles.").json()
    mine = answer(alice, question["id"], "Thanks!").json()
    reply = answer(bob, question["id"], "Agreed", parent_id=pro["id"]).json()
    statement = alice.post(f"/api/v1/communities/{space['id']}/posts", json={"body": "Walked today."}).json()
    url = f"/api/v1/posts/{question['id']}/accepted-answer"
    assert_error(bob.put(url, json={"comment_id": pro["id"]}), 403, "forbidden")
    assert_error(nurse.put(url, json={"comment_id": pro["id"]}), 403)
    assert_error(alice.put(url, json={"comment_id": on_other["id"]}), 422, "invalid", "comment_id")
    assert_error(alice.put(url, json={"comment_id": 999999}), 422, "invalid", "comment_id")
    assert_error(alice.put(url, json={"comment_id": reply["id"]}), 422, "invalid", "comment_id")
    assert_error(alice.put(url, json={"comment_id": mine["id"]}), 422, "invalid", "comment_id")
    assert_error(alice.put(f"/api/v1/posts/{statement['id']}/accepted-answer", json={"comment_id": None}),
                 422, "invalid", "post_id")
    assert_error(client_for(world.carol).put(url, json={"comment_id": pro["id"]}), 404)
    assert count_rows(Post, Post.accepted_comment_id.is_not(None)) == 0
    assert count_rows(Notification, Notification.kind == "answer_accepted") == 0


def test_a_red_question_goes_to_escalation_instead_of_waiting(world, client_for):
    _nina, space, nurse, alice, _bob = _setting_up(world, client_for)
    body = "Is this dose safe? Everyone would be better off without me, especially my kids."
    created = alice.post(f"/api/v1/communities/{space['id']}/posts",
                         json={"body": body, "for_professionals": True})
    assert created.status_code == 201, created.text
    question = created.json()
    assert question["safety"]["level"] == "red"
    assert "gone to a clinician" in question["safety"]["message"] and question["safety"]["resources"]
    assert question["with_clinical_team"] is True
    with dbmod.transaction(write=False) as s:
        escalation = s.scalar(select(Escalation).where(Escalation.object_type == "post",
                                                       Escalation.object_id == question["id"]))
    assert escalation is not None and escalation.space_id == space["id"]
    # the community has no clinician: the installation's admins are alerted
    assert count_rows(Notification, Notification.user_id == world.admin.id, Notification.kind == "escalation") == 1
    assert nurse.get(f"/api/v1/communities/{space['id']}/awaiting-professional").json() == []
    assert nurse.get(f"/api/v1/posts/{question['id']}").json()["with_clinical_team"] is True
    assert "with the clinical team" in nurse.get(f"/posts/{question['id']}").text
    # once a clinician finds no risk, it waits for answers like any other
    admin = client_for(world.admin)
    resolved = admin.post(f"/api/v1/escalations/{escalation.id}/resolve", json={"outcome": "no_risk"})
    assert resolved.status_code == 200, resolved.text
    assert [p["id"] for p in nurse.get(f"/api/v1/communities/{space['id']}/awaiting-professional").json()] == [
        question["id"]]


def test_a_crisis_question_is_held_and_told_kindly_through_the_page(world, client_for):
    _nina, space, nurse, alice, _bob = _setting_up(world, client_for)
    page = alice.get(f"/circles/{space['id']}").text
    told = alice.post(f"/circles/{space['id']}/posts", data={
        "csrf_token": form_token(page), "body": "I'm going to kill myself tonight, what dose would do it?",
        "question": "true", "for_professionals": "true"})
    assert told.status_code == 200 and "gone to a clinician" in told.text and "You are not alone" in told.text
    with dbmod.transaction(write=False) as s:
        post = s.scalar(select(Post).order_by(Post.id.desc()).limit(1))
        assert (post.is_question, post.for_professionals, post.visibility) == (True, True, "held")
        assert s.scalar(select(Escalation.id).where(Escalation.object_id == post.id)) is not None
    assert nurse.get(f"/api/v1/communities/{space['id']}/awaiting-professional").json() == []


def test_a_question_is_asked_through_the_compose_form(world, client_for):
    _nina, space, nurse, alice, _bob = _setting_up(world, client_for)
    page = alice.get(f"/circles/{space['id']}").text
    assert 'name="for_professionals"' in page
    sent = alice.post(f"/circles/{space['id']}/posts", data={
        "csrf_token": form_token(page), "body": "How often should feet be checked?", "for_professionals": "true"},
        follow_redirects=False)
    assert sent.status_code == 303
    waiting = nurse.get(f"/communities/{space['id']}/awaiting")
    assert waiting.status_code == 200 and "How often should feet be checked?" in waiting.text
    assert "Question for professionals" in waiting.text
    assert client_for(world.carol).get(f"/communities/{space['id']}/awaiting").status_code == 404
    assert client_for(world.carol).get(f"/api/v1/communities/{space['id']}/awaiting-professional").status_code == 404


def test_a_backup_restores_an_accepted_answer_and_a_verification(database, tmp_path):
    """An accepted answer points back at a comment: a backup (tables in dependency order) still restores."""
    from sqlalchemy import text
    from typer.testing import CliRunner

    from peerlift.cli import app
    from peerlift.community import service as community
    from peerlift.policy import circle_access
    from peerlift.professionals import service as professionals
    from peerlift.professionals.models import Professional
    from tests.conftest import build_world, migrate_fresh

    migrate_fresh(database)
    with dbmod.transaction() as s:
        w = build_world(s)
        application = professionals.apply(s, w.bob, profession="nurse", registration_number="12A3456E")
        professionals.verify(s, w.admin, application)
        for person in (w.alice, w.bob):
            community.accept_rules(s, circle_access(s, person, w.circle.id))
        question = community.create_post(s, circle_access(s, w.alice, w.circle.id), "Which shoes for walking?",
                                         question=True)
        reply = community.create_comment(s, circle_access(s, w.bob, w.circle.id), question, "Cushioned ones.",
                                         as_professional=True)
        community.accept_answer(s, circle_access(s, w.alice, w.circle.id), question, reply.id)
        question_id, reply_id = question.id, reply.id
    runner = CliRunner()
    file = tmp_path / "world.backup"
    assert runner.invoke(app, ["backup", "--out", str(file)]).exit_code == 0
    engine = dbmod.get_engine()
    dbmod.Base.metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    result = runner.invoke(app, ["restore", str(file)])
    assert result.exit_code == 0, result.output
    with dbmod.transaction(write=False) as s:
        assert s.get(Post, question_id).accepted_comment_id == reply_id
        assert s.get(Comment, reply_id).as_professional is True
        assert s.scalar(select(Professional.status)) == "verified"
