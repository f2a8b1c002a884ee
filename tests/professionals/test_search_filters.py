"""Search by author type (verified professionals or members) and for questions a professional answered,
still only among what the searcher may open."""

from __future__ import annotations

from tests.conftest import assert_error
from tests.professionals.helpers import answer, ask, community, join, make_person, revoke, verified


def _found(client, q: str, **params) -> list[tuple[str, int]]:
    response = client.get("/api/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return sorted((hit["kind"], hit["id"]) for hit in response.json()["results"])


def test_author_type_and_professional_answer_filters(world, client_for):
    nina = make_person("Nina Nurse")
    coach = client_for(world.coach)
    space = community(coach)
    nurse, alice, bob = client_for(nina), client_for(world.alice), client_for(world.bob)
    join(nurse, space["id"], "Night Shift Nina")
    join(alice, space["id"], "Calm Heron 42")
    join(bob, space["id"], "Brave Otter 11")
    application_id = verified(nina, world.admin)
    answered = ask(alice, space["id"], "Is insulin storage in a warm car a problem?", for_professionals=True)
    waiting = ask(bob, space["id"], "Does insulin need a cool bag on holiday?", for_professionals=True)
    pro = answer(nurse, answered["id"], "Heat spoils insulin: keep it below 30 degrees.", as_professional=True)
    peer = answer(bob, waiting["id"], "I use a cool bag for my insulin.").json()
    pro_id = pro.json()["id"]

    everything = _found(alice, "insulin")
    assert everything == sorted([("post", answered["id"]), ("post", waiting["id"]), ("comment", pro_id),
                                 ("comment", peer["id"])])
    assert _found(alice, "insulin", author_type="professional") == [("comment", pro_id)]
    assert ("comment", pro_id) not in _found(alice, "insulin", author_type="member")
    assert ("comment", peer["id"]) in _found(alice, "insulin", author_type="member")
    assert _found(alice, "insulin", has_professional_answer="true") == [("post", answered["id"])]
    assert _found(alice, "insulin", has_professional_answer="true", author_type="member") == [
        ("post", answered["id"])]
    assert_error(alice.get("/api/v1/search", params={"q": "insulin", "author_type": "wizard"}), 422)

    # permission-safe: someone outside the community finds none of it, whatever the filters
    outsider = client_for(world.carol)
    assert _found(outsider, "insulin", author_type="professional") == []
    assert _found(outsider, "insulin", has_professional_answer="true") == []

    # the page has the controls and keeps them
    page = alice.get("/search", params={"q": "insulin", "author_type": "professional",
                                        "has_professional_answer": "true"}).text
    assert 'value="professional" selected' in page and 'name="has_professional_answer" value="true" checked' in page

    # a revoked verification counts no more
    revoke(application_id, world.admin)
    assert _found(alice, "insulin", author_type="professional") == []
    assert _found(alice, "insulin", has_professional_answer="true") == []
    assert ("comment", pro_id) in _found(alice, "insulin", author_type="member")
