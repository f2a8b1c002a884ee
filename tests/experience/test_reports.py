"""Experience reports: written by members of an open community, checked field by field, grouped per
treatment and counted (never summarised beyond counts and medians)."""

from __future__ import annotations

import pytest

from peerlift.events import Event
from peerlift.experience.models import ExperienceReport
from peerlift.db import transaction
from peerlift.safety.models import Escalation, ReviewItem
from sqlalchemy import select
from tests.conftest import assert_error, count_rows, form_token
from tests.experience.helpers import community, community_of_two, join, report


@pytest.fixture
def setup(world, client_for):
    return community_of_two(world, client_for)


def test_a_member_reports_a_medicine_by_its_code(setup):
    community_id, _coach, alice, _bob = setup
    created = report(alice, community_id, side_effects=["Nausea", " upset  stomach ", "nausea"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["treatment_code"], body["treatment_name"], body["treatment_key"]) == ("A10BA02", "metformin",
                                                                                        "A10BA02")
    assert body["duration"] == "3 months" and body["would_recommend"] == "yes"
    assert body["side_effects"] == ["Nausea", "upset stomach"]  # the same term twice counts once
    assert body["author"]["display_name"] == "Calm Heron 42"  # the community name, never the real name
    assert body["screening"]["level"] == "green"
    with transaction(write=False) as s:
        kinds = [e.kind for e in s.scalars(select(Event).where(Event.object_type == "experience"))]
    assert kinds == ["experience.created"]


def test_the_listed_name_of_a_medicine_counts_as_its_code_and_free_text_groups_by_its_words(setup):
    community_id, _coach, alice, bob = setup
    by_name = report(alice, community_id, treatment="  Metformin ").json()
    assert by_name["treatment_code"] == "A10BA02"
    walk = report(alice, community_id, treatment="Walking  after dinner", duration_unit="ongoing",
                  duration_value=None).json()
    again = report(bob, community_id, treatment="walking after DINNER", duration_unit="ongoing",
                   duration_value=None).json()
    assert walk["treatment_code"] is None and walk["treatment_name"] == "Walking after dinner"
    assert walk["treatment_key"] == again["treatment_key"] == "walking after dinner"
    assert walk["duration"] == "ongoing"


@pytest.mark.parametrize("fields, field, words", [
    ({"treatment": "A10XX99"}, "treatment", "A10XX99"),
    ({"treatment": "   "}, "treatment", "Name the treatment"),
    ({"treatment": "x" * 121}, "treatment", "121 characters"),
    ({"side_effects": [f"effect {i}" for i in range(11)]}, "side_effects", "at most 10"),
    ({"side_effects": ["a" * 61]}, "side_effects", "at most 60"),
    ({"side_effects": [3]}, "side_effects", "short text"),
    ({"duration_unit": "fortnights"}, "duration_unit", "days, weeks"),
    ({"duration_value": 0}, "duration_value", "between 1 and 999"),
    ({"duration_value": 1000}, "duration_value", "between 1 and 999"),
    ({"duration_value": None}, "duration_value", "how many months"),
    ({"duration_value": 2, "duration_unit": "ongoing"}, "duration_value", "ongoing"),
    ({"would_recommend": "maybe"}, "would_recommend", "yes, no, unsure"),
    ({"what_helped": "w" * 2001}, "what_helped", "2,001"),
])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(setup, fields, field, words):
    community_id, _coach, alice, _bob = setup
    before = count_rows(ExperienceReport), count_rows(Event)
    error = assert_error(report(alice, community_id, **fields), 422, field=field)
    assert words in error["message"]
    assert (count_rows(ExperienceReport), count_rows(Event)) == before


def test_outsiders_and_circles_answer_404(world, setup, client_for):
    community_id, *_ = setup
    carol = client_for(world.carol)  # signed in, not a member
    assert_error(report(carol, community_id), 404, field="community_id")
    assert_error(carol.get(f"/api/v1/communities/{community_id}/experience-reports"), 404)
    alice = client_for(world.alice)
    assert_error(report(alice, world.circle.id), 404)  # a circle is not a community
    mine = report(alice, community_id).json()
    assert_error(carol.get(f"/api/v1/experience-reports/{mine['id']}"), 404, field="report_id")
    assert count_rows(ExperienceReport) == 1


def test_anonymous_only_where_the_community_allows_it(world, client_for):
    coach = client_for(world.coach)
    closed = community(coach, name="Long COVID", allow_anonymous=False)
    open_ = community(coach, name="Quitting smoking", allow_anonymous=True)
    alice, bob = client_for(world.alice), client_for(world.bob)
    for community_id, name in ((closed, "Calm Heron 42"), (open_, None)):
        join(alice, community_id, name or "Calm Heron 42")
    join(bob, open_, "Brave Otter 17")
    assert_error(report(alice, closed, anonymous=True), 422, field="anonymous")
    assert count_rows(ExperienceReport) == 0
    hidden = report(alice, open_, anonymous=True).json()
    assert hidden["anonymous"] is True
    seen_by_bob = bob.get(f"/api/v1/experience-reports/{hidden['id']}").json()
    assert seen_by_bob["author"] == {"id": 0, "display_name": "Anonymous member"}
    seen_by_coach = coach.get(f"/api/v1/experience-reports/{hidden['id']}").json()
    assert seen_by_coach["author"]["display_name"] == "Calm Heron 42"


def test_edit_by_the_author_only_and_delete_by_author_or_facilitator(setup):
    community_id, coach, alice, bob = setup
    mine = report(alice, community_id).json()
    url = f"/api/v1/experience-reports/{mine['id']}"
    patch = {"treatment": "A10BA02", "duration_value": 6, "duration_unit": "months", "side_effects": [],
             "would_recommend": "unsure"}
    assert_error(bob.patch(url, json=patch), 403)
    assert_error(alice.patch(url, json={**patch, "duration_unit": "eons"}), 422, field="duration_unit")
    edited = alice.patch(url, json=patch)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["duration"], edited.json()["would_recommend"], edited.json()["edited_at"] is not None) == (
        "6 months", "unsure", True)
    assert_error(bob.delete(url), 403)
    assert coach.delete(url).status_code == 204
    assert_error(alice.get(url), 404)
    assert alice.get(f"/api/v1/communities/{community_id}/experience-reports").json() == []


def test_a_crisis_in_a_report_is_held_and_escalated_like_a_post(setup):
    community_id, coach, alice, bob = setup
    created = report(alice, community_id, what_helped="Nothing. I want to kill myself tonight.")
    assert created.status_code == 201, created.text
    assert created.json()["screening"]["held"] is True
    held_id = created.json()["id"]
    assert_error(bob.get(f"/api/v1/experience-reports/{held_id}"), 404)  # members do not see it
    assert alice.get(f"/api/v1/experience-reports/{held_id}").json()["visibility"] == "held"
    assert coach.get(f"/api/v1/experience-reports/{held_id}").status_code == 200  # the facilitator does
    assert bob.get(f"/api/v1/communities/{community_id}/experience-aggregates").json() == []
    with transaction(write=False) as s:
        assert s.scalar(select(Escalation.object_type).where(Escalation.object_id == held_id)) == "experience"
        assert s.scalar(select(ReviewItem.object_type).where(ReviewItem.object_id == held_id)) == "experience"
    queue = coach.get(f"/circles/{community_id}/review")
    assert queue.status_code == 200 and "kill myself" in queue.text


def test_aggregates_count_reports_recommendations_side_effects_and_the_median(world, setup, client_for):
    community_id, coach, alice, bob = setup
    # metformin: 4 reports; side effects named by 3, 2, 2 (ties by the term), 1; durations 2 weeks, 3 and 6
    # months, and one ongoing (not in the median)
    report(alice, community_id, side_effects=["Nausea", "diarrhoea"], duration_value=2, duration_unit="weeks")
    report(bob, community_id, side_effects=["nausea", "Bloating"], would_recommend="no")
    report(coach, community_id, side_effects=["NAUSEA", "diarrhoea", "bloating", "tiredness"],
           duration_value=6, would_recommend="unsure")
    report(alice, community_id, side_effects=[], duration_unit="ongoing", duration_value=None)
    # walking: 1 report; semaglutide: 1 report (ties: by name)
    report(bob, community_id, treatment="Walking", side_effects=[], duration_value=5, duration_unit="years")
    report(bob, community_id, treatment="A10BJ06", side_effects=["nausea"], duration_value=10, duration_unit="days")
    got = alice.get(f"/api/v1/communities/{community_id}/experience-aggregates").json()
    assert [(a["treatment_name"], a["reports"]) for a in got] == [("metformin", 4), ("semaglutide", 1),
                                                                  ("Walking", 1)]
    metformin = got[0]
    assert metformin["recommend"] == {"yes": 2, "no": 1, "unsure": 1}
    assert [(s["term"], s["reports"]) for s in metformin["side_effects"]] == [
        ("nausea", 3), ("bloating", 2), ("diarrhoea", 2), ("tiredness", 1)]
    assert metformin["median_days"] == 90 and metformin["median_duration"] == "3 months"
    assert metformin["ongoing"] == 1
    assert metformin["summary"] == "4 reports; most-mentioned side effect: nausea (3)"
    assert got[2]["summary"] == "1 report; no side effects reported"
    one = alice.get(f"/api/v1/communities/{community_id}/experience-aggregates",
                    params={"treatment": "metformin"}).json()
    assert [a["treatment_key"] for a in one] == ["A10BA02"]
    listed = alice.get(f"/api/v1/communities/{community_id}/experience-reports", params={"treatment": "A10BA02"})
    assert len(listed.json()) == 4
    # across communities: only those the person belongs to
    other = community(coach, name="Weight loss")
    report(coach, other, side_effects=["nausea"])
    assert [a["reports"] for a in alice.get("/api/v1/experience-aggregates", params={"treatment": "A10BA02"}).json()] \
        == [4]
    across = coach.get("/api/v1/experience-aggregates", params={"treatment": "A10BA02"}).json()
    assert [(a["reports"], a["community_ids"]) for a in across] == [(5, sorted([community_id, other]))]


def test_a_deleted_report_leaves_the_counts(setup):
    community_id, _coach, alice, bob = setup
    first = report(alice, community_id).json()
    report(bob, community_id)
    alice.delete(f"/api/v1/experience-reports/{first['id']}")
    got = bob.get(f"/api/v1/communities/{community_id}/experience-aggregates").json()
    assert [a["reports"] for a in got] == [1]


def test_the_form_shows_the_error_keeps_what_was_typed_and_writes_nothing(setup, world, client_for):
    community_id, _coach, alice, _bob = setup
    form = alice.get(f"/communities/{community_id}/experiences/new")
    assert form.status_code == 200 and 'list="medicines"' in form.text
    refused = alice.post(f"/communities/{community_id}/experiences/new", data={
        "csrf_token": form_token(form.text), "treatment": "Walking", "duration_value": "3",
        "duration_unit": "ongoing", "side_effects": "sore knees", "would_recommend": "yes"})
    assert refused.status_code == 422
    assert "An ongoing treatment has no number" in refused.text and 'value="sore knees"' in refused.text
    assert count_rows(ExperienceReport) == 0
    done = alice.post(f"/communities/{community_id}/experiences/new", data={
        "csrf_token": form_token(form.text), "treatment": "Walking", "duration_value": "",
        "duration_unit": "ongoing", "side_effects": "sore knees, Sore knees; blisters", "would_recommend": "yes"},
        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("/experiences/treatment?key=walking")
    page = alice.get(done.headers["location"])
    assert "1 report; most-mentioned side effect: blisters (1)" in page.text
    assert "sore knees, blisters" in page.text


def test_a_flagged_report_is_reviewed_and_removed_like_a_post(setup):
    community_id, coach, alice, bob = setup
    mine = report(alice, community_id, what_helped="Buy my miracle pills at example.test.").json()
    flagged = bob.post("/api/v1/flags", json={"object_type": "experience", "object_id": mine["id"],
                                              "reason": "spam"})
    assert flagged.status_code == 201, flagged.text
    [item] = coach.get(f"/api/v1/circles/{community_id}/review").json()
    assert item["object_type"] == "experience" and "miracle pills" in item["body"]
    removed = coach.post(f"/api/v1/review/{item['id']}/actions", json={"action": "remove", "reason": "Advertising."})
    assert removed.status_code == 201, removed.text
    assert_error(bob.get(f"/api/v1/experience-reports/{mine['id']}"), 404)
    assert alice.get(f"/api/v1/experience-reports/{mine['id']}").json()["visibility"] == "removed"
    assert bob.get(f"/api/v1/communities/{community_id}/experience-aggregates").json() == []
    assert bob.get("/api/v1/search", params={"q": "miracle pills"}).json()["results"] == []


def test_spelling_variants_and_everyday_words_on_the_shipped_list_count_together(setup):
    community_id, coach, alice, bob = setup
    report(alice, community_id, side_effects=["Feeling sick", "diarrhea"])
    report(bob, community_id, side_effects=["nausea", "Diarrhoea", "nauseous"])  # nausea twice: counted once
    report(coach, community_id, side_effects=["upset stomach"])  # not on the list: its own term
    [metformin] = alice.get(f"/api/v1/communities/{community_id}/experience-aggregates").json()
    assert [(s["term"], s["reports"]) for s in metformin["side_effects"]] == [
        ("diarrhoea", 2), ("nausea", 2), ("upset stomach", 1)]
    assert metformin["summary"] == "3 reports; most-mentioned side effect: diarrhoea (2)"


def test_the_synonym_list_only_maps_onto_terms_and_never_onto_itself():
    from peerlift.experience.service import side_effect_synonyms

    synonyms = side_effect_synonyms()
    assert synonyms["feeling sick"] == "nausea"
    assert not set(synonyms) & set(synonyms.values())  # no chains: a counted term is never remapped


def test_reports_count_toward_the_writing_limits(setup, monkeypatch):
    """One limit for all writing: reports count with posts and comments, and a report over it is refused."""
    from peerlift.settings import get_settings

    community_id, _coach, alice, _bob = setup
    monkeypatch.setenv("PEERLIFT_POSTS_PER_MINUTE", "2")
    get_settings.cache_clear()
    assert report(alice, community_id).status_code == 201
    assert alice.post(f"/api/v1/communities/{community_id}/posts", json={"body": "Hello all"}).status_code == 201
    before = count_rows(ExperienceReport)
    assert_error(report(alice, community_id, what_helped="A third piece of writing."), 429, "rate_limited")
    assert count_rows(ExperienceReport) == before
    get_settings.cache_clear()
