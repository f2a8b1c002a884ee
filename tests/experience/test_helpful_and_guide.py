""""Helpful" votes on posts, answers and reports, and the guide a community's facilitators curate."""

from __future__ import annotations

import pytest

from peerlift.experience.models import GuideEntry, HelpfulVote
from tests.conftest import assert_error, count_rows, form_token
from tests.experience.helpers import community, community_of_two, report


@pytest.fixture
def setup(world, client_for):
    community_id, coach, alice, bob = community_of_two(world, client_for)
    post = alice.post(f"/api/v1/communities/{community_id}/posts", json={"body": "How do you cope with nausea?"})
    assert post.status_code == 201, post.text
    post_id = post.json()["id"]
    answer = bob.post(f"/api/v1/posts/{post_id}/comments", json={"body": "Small meals and ginger tea."})
    assert answer.status_code == 201, answer.text
    return community_id, coach, alice, bob, post_id, answer.json()["id"]


def test_helpful_votes_toggle_and_doing_it_twice_changes_nothing(setup):
    community_id, coach, alice, bob, post_id, answer_id = setup
    url = f"/api/v1/comments/{answer_id}/helpful"
    first = alice.put(url).json()
    assert first == {"helpful_count": 1, "my_helpful": True, "changed": True}
    assert alice.put(url).json() == {"helpful_count": 1, "my_helpful": True, "changed": False}
    assert coach.put(url).json()["helpful_count"] == 2
    assert count_rows(HelpfulVote) == 2
    assert alice.delete(url).json() == {"helpful_count": 1, "my_helpful": False, "changed": True}
    assert alice.delete(url).json()["changed"] is False
    assert count_rows(HelpfulVote) == 1
    assert bob.put(f"/api/v1/posts/{post_id}/helpful").json()["helpful_count"] == 1
    mine = report(alice, community_id).json()
    assert bob.put(f"/api/v1/experience-reports/{mine['id']}/helpful").json()["helpful_count"] == 1
    assert alice.get(f"/api/v1/experience-reports/{mine['id']}").json()["helpful_count"] == 1


def test_nobody_votes_for_their_own_writing(setup):
    community_id, _coach, alice, bob, post_id, answer_id = setup
    before = count_rows(HelpfulVote)
    error = assert_error(alice.put(f"/api/v1/posts/{post_id}/helpful"), 422, field="post_id")
    assert "your own" in error["message"]
    assert_error(bob.put(f"/api/v1/comments/{answer_id}/helpful"), 422, field="comment_id")
    mine = report(alice, community_id).json()
    assert_error(alice.put(f"/api/v1/experience-reports/{mine['id']}/helpful"), 422, field="report_id")
    assert count_rows(HelpfulVote) == before


def test_outsiders_cannot_vote(world, setup, client_for):
    _community_id, _coach, _alice, _bob, post_id, answer_id = setup
    carol = client_for(world.carol)
    assert_error(carol.put(f"/api/v1/posts/{post_id}/helpful"), 404)
    assert_error(carol.put(f"/api/v1/comments/{answer_id}/helpful"), 404)
    assert count_rows(HelpfulVote) == 0


def test_the_helpful_button_works_without_javascript(setup):
    _community_id, _coach, alice, _bob, post_id, answer_id = setup
    page = alice.get(f"/posts/{post_id}")
    assert "0 found this helpful" in page.text
    done = alice.post(f"/comments/{answer_id}/helpful", data={"csrf_token": form_token(page.text), "on": "true",
                                                               "next": f"/posts/{post_id}#comment-{answer_id}"},
                      follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/posts/{post_id}#comment-{answer_id}"
    assert "1 found this helpful" in alice.get(f"/posts/{post_id}").text


def test_a_facilitator_curates_the_guide_and_members_read_it(setup):
    community_id, coach, alice, bob, post_id, answer_id = setup
    mine = report(alice, community_id).json()
    url = f"/api/v1/communities/{community_id}/guide"
    added = coach.post(url, json={"target_type": "comment", "target_id": answer_id, "heading": "Coping with nausea"})
    assert added.status_code == 201, added.text
    coach.post(url, json={"target_type": "post", "target_id": post_id})
    guide = coach.post(url, json={"target_type": "experience", "target_id": mine["id"]}).json()
    assert [(g["target_type"], g["heading"]) for g in guide] == [
        ("comment", "Coping with nausea"), ("post", ""), ("experience", "")]
    assert guide[0]["url"] == f"/posts/{post_id}#comment-{answer_id}"
    assert guide[0]["author"]["display_name"] == "Brave Otter 17"
    read = alice.get(url).json()
    assert [g["id"] for g in read] == [g["id"] for g in guide]
    # reorder: the report up to the top
    report_entry = guide[2]["id"]
    coach.post(f"/api/v1/guide-entries/{report_entry}/move", json={"direction": "up"})
    moved = coach.post(f"/api/v1/guide-entries/{report_entry}/move", json={"direction": "up"}).json()
    assert [g["target_type"] for g in moved] == ["experience", "comment", "post"]
    at_top = coach.post(f"/api/v1/guide-entries/{report_entry}/move", json={"direction": "up"}).json()
    assert [g["id"] for g in at_top] == [g["id"] for g in moved]  # already first: nothing changes
    assert_error(coach.post(f"/api/v1/guide-entries/{report_entry}/move", json={"direction": "sideways"}), 422,
                 field="direction")
    # remove
    assert coach.delete(f"/api/v1/guide-entries/{guide[1]['id']}").status_code == 204
    assert [g["target_type"] for g in alice.get(url).json()] == ["experience", "comment"]


def test_guide_bad_input_and_duplicates(world, setup, client_for):
    community_id, coach, alice, bob, post_id, answer_id = setup
    url = f"/api/v1/communities/{community_id}/guide"
    assert_error(coach.post(url, json={"target_type": "message", "target_id": 1}), 422, field="target_type")
    assert_error(coach.post(url, json={"target_type": "post", "target_id": 999_999}), 422, field="target_id")
    assert_error(coach.post(url, json={"target_type": "post", "target_id": post_id, "heading": "h" * 201}), 422,
                 field="heading")
    # writing of another space cannot go into this guide
    circle_post = client_for(world.alice).post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "Circle."})
    assert_error(coach.post(url, json={"target_type": "post", "target_id": circle_post.json()["id"]}), 422,
                 field="target_id")
    assert coach.post(url, json={"target_type": "post", "target_id": post_id}).status_code == 201
    assert_error(coach.post(url, json={"target_type": "post", "target_id": post_id}), 409, field="target_id")
    assert count_rows(GuideEntry) == 1


def test_members_cannot_curate_and_other_facilitators_do_not_see_it(world, setup, client_for):
    community_id, coach, alice, _bob, post_id, _answer_id = setup
    url = f"/api/v1/communities/{community_id}/guide"
    assert_error(alice.post(url, json={"target_type": "post", "target_id": post_id}), 403)
    entry = coach.post(url, json={"target_type": "post", "target_id": post_id}).json()[0]
    assert_error(alice.delete(f"/api/v1/guide-entries/{entry['id']}"), 403)
    assert_error(alice.post(f"/api/v1/guide-entries/{entry['id']}/move", json={"direction": "down"}), 403)
    other_coach = client_for(world.other_coach)
    community(other_coach, name="Their own")  # facilitates another community
    assert_error(other_coach.get(url), 404)
    assert_error(other_coach.post(url, json={"target_type": "post", "target_id": post_id}), 404)
    assert_error(other_coach.delete(f"/api/v1/guide-entries/{entry['id']}"), 404, field="guide_entry_id")
    assert count_rows(GuideEntry) == 1


def test_deleted_or_removed_writing_leaves_the_guide(setup):
    community_id, coach, alice, bob, post_id, answer_id = setup
    mine = report(alice, community_id).json()
    url = f"/api/v1/communities/{community_id}/guide"
    for target_type, target_id in (("comment", answer_id), ("post", post_id), ("experience", mine["id"])):
        coach.post(url, json={"target_type": target_type, "target_id": target_id})
    assert len(alice.get(url).json()) == 3
    bob.delete(f"/api/v1/comments/{answer_id}")
    assert [g["target_type"] for g in alice.get(url).json()] == ["post", "experience"]
    alice.delete(f"/api/v1/experience-reports/{mine['id']}")
    alice.delete(f"/api/v1/posts/{post_id}")
    assert alice.get(url).json() == []


def test_held_writing_cannot_be_marked_helpful(setup):
    community_id, coach, alice, _bob, _post_id, _answer_id = setup
    held = alice.post(f"/api/v1/communities/{community_id}/posts",
                      json={"body": "I want to kill myself tonight."}).json()
    assert held["visibility"] == "held"
    assert_error(coach.put(f"/api/v1/posts/{held['id']}/helpful"), 422, field="post_id")
    assert count_rows(HelpfulVote) == 0


def test_the_post_page_shows_the_posts_count_and_a_button_to_others_only(setup):
    community_id, coach, alice, bob, post_id, _answer_id = setup
    page = bob.get(f"/posts/{post_id}").text
    assert f'action="/posts/{post_id}/helpful"' in page and f'name="next" value="/posts/{post_id}"' in page
    done = bob.post(f"/posts/{post_id}/helpful", data={"csrf_token": form_token(page), "on": "true",
                                                       "next": f"/posts/{post_id}"}, follow_redirects=False)
    assert done.status_code == 303
    mine = alice.get(f"/posts/{post_id}").text
    assert f'action="/posts/{post_id}/helpful"' not in mine and "1 found this helpful" in mine
    # the facilitator sees "Add to guide" under the post and the answer; members do not
    assert mine.count('action="/communities/') == 0
    assert coach.get(f"/posts/{post_id}").text.count(f'action="/communities/{community_id}/guide"') == 2
