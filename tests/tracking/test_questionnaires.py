"""Questionnaires: sent by a facilitator, answered once on a form, scored from the instrument's data,
alerts and free text handed to the hooks in the same transaction, history and trend."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.events import Event
from peerlift.notify.models import Notification
from peerlift.tracking import service
from peerlift.tracking.instruments import shipped
from peerlift.tracking.models import InstrumentDefinition, QuestionnaireRequest, QuestionnaireResponse
from peerlift.tracking.scoring import score
from tests.conftest import assert_error, count_rows, form_token

CUSTOM = """\
key: stress3
version: "1.0"
name: Three stress questions
short_name: Stress-3
about: stress this week
preamble: In the past week...
options:
  - {score: 0, label: Never}
  - {score: 1, label: Sometimes}
  - {score: 2, label: Often}
items:
  - {id: tense, text: Did you feel tense?}
  - {id: sleep, text: Did worry keep you awake?}
  - {id: overwhelmed, text: Did you feel overwhelmed?}
  - {id: notes, text: Anything you want your coach to know?, type: text, max_length: 500}
bands:
  - {key: low, label: Low, min: 0, max: 2}
  - {key: high, label: High, min: 3, max: 6}
alerts:
  - {name: overwhelmed_often, item: overwhelmed, at_least: 2}
"""


def _send(client, circle, instrument, user_id=None):
    body = {"instrument": instrument} | ({"user_id": user_id} if user_id is not None else {})
    return client.post(f"/api/v1/circles/{circle.id}/questionnaires", json=body)


def _events(kind: str) -> list[Event]:
    with dbmod.transaction(write=False) as s:
        return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


@pytest.fixture
def hooks():
    calls: list[tuple] = []

    def on_alert(session, user, response, alert):
        calls.append(("alert", user.id, response.id, alert, session.in_transaction(),
                      session.get(QuestionnaireResponse, response.id) is response))

    def on_text(session, user, response, text):
        calls.append(("text", user.id, response.id, text, session.in_transaction()))

    service.ALERT_RAISED.append(on_alert)
    service.FREE_TEXT_ANSWERED.append(on_text)
    yield calls
    service.ALERT_RAISED.remove(on_alert)
    service.FREE_TEXT_ANSWERED.remove(on_text)


def test_facilitator_sends_to_one_member_or_the_whole_circle(world, client_for):
    coach = client_for(world.coach)
    one = _send(coach, world.circle, "phq9", world.alice.id)
    assert one.status_code == 201, one.text
    [request] = one.json()
    assert request["user_id"] == world.alice.id and request["instrument_key"] == "phq9"
    with dbmod.transaction(write=False) as s:
        note = s.scalar(select(Notification).where(Notification.user_id == world.alice.id))
        assert note.link == f"/questionnaires/{request['id']}" and "PHQ-9" in note.text
    listed = client_for(world.alice).get("/api/v1/notifications").json()
    assert any(n["link"] == f"/questionnaires/{request['id']}" for n in listed["notifications"])
    everyone = _send(coach, world.circle, "gad7")
    assert sorted(r["user_id"] for r in everyone.json()) == sorted([world.alice.id, world.bob.id, world.pat.id])


def test_only_facilitators_send_and_only_in_their_circles(world, client_for):
    assert_error(_send(client_for(world.bob), world.circle, "phq9", world.alice.id), 403)
    assert_error(_send(client_for(world.other_coach), world.circle, "phq9"), 404)
    coach = client_for(world.coach)
    assert_error(_send(coach, world.circle, "bdi2"), 404, code="unknown_instrument", field="instrument")
    assert_error(_send(coach, world.circle, "phq9", world.carol.id), 404, field="user_id")
    assert count_rows(QuestionnaireRequest) == 0


def test_answer_is_scored_stored_published_and_only_once(world, client_for, hooks):
    _send(client_for(world.coach), world.circle, "phq9", world.alice.id)
    alice = client_for(world.alice)
    [request] = alice.get("/api/v1/questionnaires/requests", params={"open_only": True}).json()
    answers = [1, 1, 2, 1, 0, 1, 1, 0, 0]
    response = alice.post(f"/api/v1/questionnaires/requests/{request['id']}/response", json={"answers": answers})
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["instrument_key"] == "phq9" and stored["instrument_version"] == "1.0"
    assert stored["answers"] == answers and stored["total"] == 7 and stored["band"] == "mild"
    assert stored["alerts"] == [] and hooks == []
    [event] = _events("questionnaire.scored")
    assert event.user_id == world.alice.id and event.actor_id == world.alice.id
    assert event.data == {"instrument": "phq9", "version": "1.0", "total": 7, "band": "mild", "previous_band": None,
                          "band_rank": 1, "previous_band_rank": None, "alerts": [], "response_id": stored["id"]}

    again = alice.post(f"/api/v1/questionnaires/requests/{request['id']}/response", json={"answers": answers})
    assert_error(again, 409, code="already_answered")
    assert count_rows(QuestionnaireResponse) == 1
    assert len(_events("questionnaire.scored")) == 1
    assert alice.get("/api/v1/questionnaires/requests", params={"open_only": True}).json() == []


def test_previous_band_lets_a_worsening_be_seen(world, client_for):
    coach, alice = client_for(world.coach), client_for(world.alice)
    for answers in ([0] * 9, [2, 2, 2, 2, 1, 1, 1, 1, 0]):
        [request] = _send(coach, world.circle, "phq9", world.alice.id).json()
        assert alice.post(f"/api/v1/questionnaires/requests/{request['id']}/response",
                          json={"answers": answers}).status_code == 201
    first, second = _events("questionnaire.scored")
    assert (second.data["previous_band"], second.data["band"]) == ("minimal", "moderate")
    assert (second.data["previous_band_rank"], second.data["band_rank"]) == (0, 2)


def test_item9_alert_goes_to_the_hook_in_the_same_transaction(world, client_for, hooks):
    [request] = _send(client_for(world.coach), world.circle, "phq9", world.alice.id).json()
    alice = client_for(world.alice)
    response = alice.post(f"/api/v1/questionnaires/requests/{request['id']}/response",
                          json={"answers": [0, 0, 0, 0, 0, 0, 0, 0, 1]})
    assert response.status_code == 201
    stored = response.json()
    assert stored["alerts"] == ["item9"] and stored["band"] == "minimal"
    assert hooks == [("alert", world.alice.id, stored["id"], "item9", True, True)]
    assert _events("questionnaire.scored")[0].data["alerts"] == ["item9"]


def test_a_failing_hook_rolls_the_answer_back(world, client_for):
    [request] = _send(client_for(world.coach), world.circle, "phq9", world.alice.id).json()

    def broken(session, user, response, alert):
        raise RuntimeError("escalation unavailable")

    service.ALERT_RAISED.append(broken)
    try:
        with pytest.raises(RuntimeError):  # the test client re-raises what the server answered 500 for
            client_for(world.alice).post(f"/api/v1/questionnaires/requests/{request['id']}/response",
                                         json={"answers": [0, 0, 0, 0, 0, 0, 0, 0, 3]})
    finally:
        service.ALERT_RAISED.remove(broken)
    assert count_rows(QuestionnaireResponse) == 0
    assert count_rows(QuestionnaireRequest, QuestionnaireRequest.answered_at.is_(None)) == 1


BAD_ANSWERS = [
    ({"answers": [0] * 8}, "wrong_number_of_answers", "answers"),
    ({"answers": [0] * 8 + [4]}, "answer_out_of_range", "answers.8"),
    ({"answers": [0] * 8 + [1.5]}, "not_an_integer", "answers.8"),
    ({"answers": [0] * 8 + ["1"]}, "not_an_integer", "answers.8"),
    ({"answers": [0] * 9, "text_answers": {"nope": "x"}}, "invalid", "text_answers.nope"),
]


@pytest.mark.parametrize("body,code,field", BAD_ANSWERS, ids=[b[1] + str(i) for i, b in enumerate(BAD_ANSWERS)])
def test_bad_answers_store_nothing(world, client_for, body, code, field):
    [request] = _send(client_for(world.coach), world.circle, "phq9", world.alice.id).json()
    response = client_for(world.alice).post(f"/api/v1/questionnaires/requests/{request['id']}/response", json=body)
    assert_error(response, 422, code=code, field=field)
    assert count_rows(QuestionnaireResponse) == 0
    assert count_rows(QuestionnaireRequest, QuestionnaireRequest.answered_at.is_(None)) == 1


def test_someone_elses_request_is_not_found(world, client_for):
    [request] = _send(client_for(world.coach), world.circle, "phq9", world.alice.id).json()
    bob = client_for(world.bob)
    assert_error(bob.post(f"/api/v1/questionnaires/requests/{request['id']}/response", json={"answers": [0] * 9}),
                 404)
    assert_error(bob.get(f"/api/v1/questionnaires/requests/{request['id']}"), 404)
    assert bob.get(f"/questionnaires/{request['id']}").status_code == 404


def test_auditc_needs_the_sex_and_uses_its_threshold(world, client_for):
    coach, alice = client_for(world.coach), client_for(world.alice)
    [request] = _send(coach, world.circle, "auditc", world.alice.id).json()
    url = f"/api/v1/questionnaires/requests/{request['id']}/response"
    assert_error(alice.post(url, json={"answers": [1, 1, 1]}), 422, code="missing_context", field="context.sex")
    assert_error(alice.post(url, json={"answers": [1, 1, 1], "context": {"sex": "x"}}), 422, field="context.sex")
    stored = alice.post(url, json={"answers": [1, 1, 1], "context": {"sex": "female"}}).json()
    assert stored["band"] == "positive" and stored["context"] == {"sex": "female"}


def test_score_api_stores_nothing(world, client_for):
    alice = client_for(world.alice)
    ok = alice.post("/api/v1/instruments/who5/score", json={"answers": [4, 3, 4, 3, 3]})
    assert ok.status_code == 200, ok.text
    assert ok.json() | {} == {"instrument": "who5", "version": "1.0", "total": 17, "band": "good", "band_rank": 0,
                              "alerts": [], "percentage": 68}
    assert_error(alice.post("/api/v1/instruments/phq10/score", json={"answers": [0]}), 404,
                 code="unknown_instrument")
    assert_error(alice.post("/api/v1/instruments/gad7/score", json={"answers": [0] * 6}), 422,
                 code="wrong_number_of_answers")
    assert_error(alice.post("/api/v1/instruments/ftnd/score", json={"answers": [0, 2, 0, 0, 0, 0]}), 422,
                 code="answer_out_of_range", field="answers.1")
    assert count_rows(QuestionnaireResponse) == 0
    listed = alice.get("/api/v1/instruments").json()
    assert [i["key"] for i in listed] == ["auditc", "ftnd", "gad7", "phq8", "phq9", "who5"]


def test_researchers_upload_questionnaires_with_free_text(world, client_for, hooks):
    researcher = client_for(world.researcher)
    assert_error(client_for(world.alice).post("/api/v1/instruments", json={"source": CUSTOM}), 403)
    broken = CUSTOM.replace("max: 6", "max: 5").replace("item: overwhelmed", "item: notes")
    error = assert_error(researcher.post("/api/v1/instruments", json={"source": broken}), 422, field="source")
    assert "no band covers the possible total(s) 6" in error["message"]
    assert "'notes' is not a scored item" in error["message"]
    assert ":17:" in error["message"] or ":20:" in error["message"]  # problems carry the line
    typo = CUSTOM.replace("preamble:", "preambel:")
    assert "did you mean 'preamble'" in assert_error(researcher.post("/api/v1/instruments", json={"source": typo}),
                                                     422)["message"]
    phq = assert_error(researcher.post("/api/v1/instruments",
                                       json={"source": CUSTOM.replace("key: stress3", "key: phq9")}), 422)
    assert "shipped" in phq["message"]
    assert count_rows(InstrumentDefinition) == 0
    created = researcher.post("/api/v1/instruments", json={"source": CUSTOM})
    assert created.status_code == 201, created.text
    assert created.json()["score_max"] == 6
    assert_error(researcher.post("/api/v1/instruments", json={"source": CUSTOM}), 409)

    [request] = _send(client_for(world.coach), world.circle, "stress3", world.alice.id).json()
    alice = client_for(world.alice)
    stored = alice.post(f"/api/v1/questionnaires/requests/{request['id']}/response",
                        json={"answers": [1, 0, 2], "text_answers": {"notes": "  Work is a lot right now.  "}}).json()
    assert stored["band"] == "high" and stored["alerts"] == ["overwhelmed_often"]
    assert stored["text_answers"] == {"notes": "Work is a lot right now."}
    assert hooks == [("alert", world.alice.id, stored["id"], "overwhelmed_often", True, True),
                     ("text", world.alice.id, stored["id"], "Work is a lot right now.", True)]


def test_an_empty_free_text_answer_calls_no_hook(world, client_for, hooks):
    client_for(world.researcher).post("/api/v1/instruments", json={"source": CUSTOM})
    [request] = _send(client_for(world.coach), world.circle, "stress3", world.alice.id).json()
    stored = client_for(world.alice).post(f"/api/v1/questionnaires/requests/{request['id']}/response",
                                          json={"answers": [0, 0, 0], "text_answers": {"notes": "   "}}).json()
    assert stored["text_answers"] == {} and hooks == []


def _answers_for(inst, total: int) -> list[int]:
    """Answers reaching exactly ``total`` (greedy, item by item)."""
    answers, left = [], total
    for item in inst.scored_items:
        scores = sorted(o.score for o in inst.options_of(item))
        pick = max((s for s in scores if s <= left), default=scores[0])
        answers.append(pick)
        left -= pick
    assert left == 0, (inst.key, total)
    return answers


def _boundaries():
    for inst in shipped().values():
        contexts = [{}] if not inst.context else [{inst.bands_by: v} for v in inst.context[inst.bands_by].values]
        for context in contexts:
            for rank, band in enumerate(inst.band_list(context)):
                for total in {band.min, band.max}:
                    yield pytest.param(inst.key, context, total, band.key, rank,
                                       id=f"{inst.key}-{'-'.join(context.values()) or 'all'}-{total}")


@pytest.mark.parametrize("key,context,total,band,rank", list(_boundaries()))
def test_every_band_boundary(key, context, total, band, rank):
    inst = shipped()[key]
    answers = _answers_for(inst, total)  # fills the first items first: PHQ-9 item 9 stays 0 up to 24
    result = score(inst, answers, context)
    assert (result.total, result.band, result.band_rank) == (total, band, rank)
    if total - 1 >= inst.score_range[0] and total == inst.band_list(context)[rank].min:
        below = score(inst, _answers_for(inst, total - 1), context)
        assert below.band != band


def test_answering_on_the_web_form(world, client_for):
    [request] = _send(client_for(world.coach), world.circle, "phq9", world.alice.id).json()
    alice = client_for(world.alice)
    form = alice.get(f"/questionnaires/{request['id']}")
    assert form.status_code == 200
    assert form.text.count('type="radio"') == 36 and "Little interest or pleasure in doing things" in form.text
    token = form_token(form.text)
    data = {"csrf_token": token} | {f"item_{item.id}": "1" for item in shipped()["phq9"].scored_items}
    missing = alice.post(f"/questionnaires/{request['id']}", data={k: v for k, v in data.items() if k != "item_mood"})
    assert missing.status_code == 422 and "Please answer question 2" in missing.text
    assert count_rows(QuestionnaireResponse) == 0
    done = alice.post(f"/questionnaires/{request['id']}", data=data, follow_redirects=False)
    assert done.status_code == 303
    result = alice.get(done.headers["location"])
    assert "Your score: <strong>9</strong> of 27" in result.text and "Mild" in result.text
    twice = alice.post(f"/questionnaires/{request['id']}", data=data)
    assert twice.status_code == 409 and "answered already" in twice.text
    assert count_rows(QuestionnaireResponse) == 1
    history = alice.get("/me/questionnaires")
    assert f"/people/{world.alice.id}/questionnaires/phq9.svg" in history.text
    chart = alice.get(f"/people/{world.alice.id}/questionnaires/phq9.svg")
    assert chart.status_code == 200 and "<script" not in chart.text
    coach_view = client_for(world.coach).get(f"/people/{world.alice.id}/tracking")
    assert "PHQ9" in coach_view.text and "mild" in coach_view.text
    assert client_for(world.other_coach).get(f"/people/{world.alice.id}/questionnaires/phq9.svg").status_code == 404
    responses = client_for(world.clinician).get("/api/v1/questionnaires/responses",
                                                params={"user_id": world.alice.id}).json()
    assert [r["total"] for r in responses] == [9]


def test_send_page_for_facilitators(world, client_for):
    coach = client_for(world.coach)
    page = coach.get(f"/circles/{world.circle.id}/questionnaires")
    assert page.status_code == 200 and "The whole circle" in page.text
    sent = coach.post(f"/circles/{world.circle.id}/questionnaires",
                      data={"csrf_token": form_token(page.text), "instrument": "who5", "user_id": ""})
    assert sent.status_code == 200 and "Sent to 3 people" in sent.text
    assert client_for(world.alice).get(f"/circles/{world.circle.id}/questionnaires").status_code == 403
