"""Experience reports are found by search, only by those who may open them."""

from __future__ import annotations

from tests.experience.helpers import community, community_of_two, join, report


def _found(client, q):
    response = client.get("/api/v1/search", params={"q": q})
    assert response.status_code == 200, response.text
    return [(hit["kind"], hit["url"]) for hit in response.json()["results"]]


def test_search_finds_a_report_only_for_those_who_can_see_it(world, client_for):
    coach = client_for(world.coach)
    community_id = community(coach)
    alice, bob, carol = client_for(world.alice), client_for(world.bob), client_for(world.carol)
    join(alice, community_id, "Calm Heron 42")
    join(bob, community_id, "Brave Otter 17")
    mine = report(alice, community_id, what_helped="Ginger biscuits in the morning.",
                  side_effects=["heartburn"]).json()
    url = f"/experiences/{mine['id']}"
    assert _found(bob, "ginger biscuits") == [("experience", url)]
    assert _found(bob, "metformin heartburn") == [("experience", url)]  # the treatment's name and side effects
    assert _found(carol, "ginger biscuits") == []  # not a member of the community
    # edited: found by its new words only
    alice.patch(f"/api/v1/experience-reports/{mine['id']}", json={
        "treatment": "A10BA02", "duration_unit": "ongoing", "what_helped": "Peppermint tea.",
        "side_effects": [], "would_recommend": "yes"})
    assert _found(bob, "ginger") == []
    assert _found(bob, "peppermint") == [("experience", url)]
    # held: the community does not find it
    held = report(alice, community_id, what_helped="Nothing. I want to kill myself tonight.").json()
    assert held["visibility"] == "held"
    assert _found(bob, "tonight") == []
    # deleted: nobody finds it
    alice.delete(f"/api/v1/experience-reports/{mine['id']}")
    assert _found(bob, "peppermint") == []
    assert _found(alice, "peppermint") == []


def test_an_anonymous_report_hides_its_author_in_results(world, client_for):
    community_id, coach, alice, bob = community_of_two(world, client_for)
    report(alice, community_id, what_helped="Cold water swimming.", anonymous=True)
    hits = bob.get("/api/v1/search", params={"q": "swimming"}).json()["results"]
    assert [(h["author_name"], h["author_id"]) for h in hits] == [("Anonymous member", 0)]
