"""Comments with one level of replies, and idempotent reactions."""

from __future__ import annotations

from peerlift.community.models import Comment, Reaction
from tests.conftest import assert_error, count_rows, post


def _comment(client, post_id, body, parent_id=None):
    return client.post(f"/api/v1/posts/{post_id}/comments", json={"body": body, "parent_id": parent_id})


def test_comments_and_one_level_of_replies(world, client_for):
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    post_id = post(alice, world.circle, "Cravings at 9pm, any tips?").json()["id"]
    first = _comment(bob, post_id, "Herbal tea helps me.").json()
    reply = _comment(coach, post_id, "Great tip, @" + world.bob.handle, parent_id=first["id"]).json()
    assert reply["parent_id"] == first["id"]
    assert_error(_comment(alice, post_id, "deeper", parent_id=reply["id"]), 422, "invalid", "parent_id")
    thread = alice.get(f"/api/v1/posts/{post_id}/comments").json()
    assert [c["id"] for c in thread] == [first["id"]]
    assert [r["id"] for r in thread[0]["replies"]] == [reply["id"]]
    assert alice.get(f"/api/v1/posts/{post_id}").json()["comment_count"] == 2


def test_comment_bad_input(world, client_for):
    alice, carol = client_for(world.alice), client_for(world.carol)
    post_id = post(alice, world.circle, "hello").json()["id"]
    other_post = post(carol, world.other_circle, "other").json()["id"]
    other_comment = _comment(carol, other_post, "there").json()["id"]
    assert_error(_comment(alice, post_id, ""), 422, "invalid", "body")
    assert_error(_comment(alice, post_id, "x" * 5001), 422, "invalid", "body")
    assert_error(_comment(alice, post_id, "hi", parent_id=other_comment), 422, "invalid", "parent_id")
    assert_error(_comment(alice, post_id, "hi", parent_id=987654), 422, "invalid", "parent_id")
    assert_error(_comment(alice, other_post, "hi"), 404)
    assert count_rows(Comment) == 1
    assert alice.get(f"/api/v1/posts/{post_id}").json()["comment_count"] == 0


def test_edit_and_delete_comments(world, client_for):
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    post_id = post(alice, world.circle, "hello").json()["id"]
    comment_id = _comment(bob, post_id, "hi").json()["id"]
    assert_error(alice.patch(f"/api/v1/comments/{comment_id}", json={"body": "not mine"}), 403)
    assert bob.patch(f"/api/v1/comments/{comment_id}", json={"body": "hi there"}).json()["body"] == "hi there"
    assert_error(alice.delete(f"/api/v1/comments/{comment_id}"), 403)
    assert coach.delete(f"/api/v1/comments/{comment_id}").status_code == 204
    assert alice.get(f"/api/v1/posts/{post_id}/comments").json() == []
    assert alice.get(f"/api/v1/posts/{post_id}").json()["comment_count"] == 0
    assert_error(bob.patch(f"/api/v1/comments/{comment_id}", json={"body": "again"}), 404)


def test_reactions_are_idempotent(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    post_id = post(alice, world.circle, "First 10k steps day!").json()["id"]
    url = f"/api/v1/posts/{post_id}/reactions"
    first = bob.put(f"{url}/strong").json()
    assert first == {"reactions": {"strong": 1}, "my_reactions": ["strong"], "changed": True}
    again = bob.put(f"{url}/strong").json()
    assert again == {"reactions": {"strong": 1}, "my_reactions": ["strong"], "changed": False}
    bob.put(f"{url}/heart")
    alice.put(f"{url}/heart")
    view = alice.get(f"/api/v1/posts/{post_id}").json()
    assert view["reactions"] == {"heart": 2, "strong": 1} and view["my_reactions"] == ["heart"]
    assert bob.delete(f"{url}/strong").json()["changed"] is True
    assert bob.delete(f"{url}/strong").json() == {"reactions": {"heart": 2}, "my_reactions": ["heart"], "changed": False}
    assert count_rows(Reaction) == 2


def test_reaction_not_in_the_set(world, client_for):
    alice = client_for(world.alice)
    post_id = post(alice, world.circle, "hello").json()["id"]
    error = assert_error(alice.put(f"/api/v1/posts/{post_id}/reactions/angry"), 422, "invalid", "kind")
    assert "like, heart, clap, hug, strong" in error["message"]
    assert count_rows(Reaction) == 0


def test_reactions_on_comments(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    post_id = post(alice, world.circle, "hello").json()["id"]
    comment_id = _comment(bob, post_id, "hi").json()["id"]
    assert alice.put(f"/api/v1/comments/{comment_id}/reactions/hug").json()["reactions"] == {"hug": 1}
    thread = bob.get(f"/api/v1/posts/{post_id}/comments").json()
    assert thread[0]["reactions"] == {"hug": 1} and thread[0]["my_reactions"] == []
    assert_error(alice.put(f"/api/v1/comments/{comment_id}/reactions/nope"), 422)
    assert_error(client_for(world.carol).put(f"/api/v1/comments/{comment_id}/reactions/hug"), 404)


def test_comment_edit_history(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    post_id = post(alice, world.circle, "hello").json()["id"]
    comment_id = _comment(bob, post_id, "first").json()["id"]
    bob.patch(f"/api/v1/comments/{comment_id}", json={"body": "second"})
    history = alice.get(f"/api/v1/comments/{comment_id}/history").json()
    assert [h["body"] for h in history] == ["first", "second"]
    assert_error(client_for(world.carol).get(f"/api/v1/comments/{comment_id}/history"), 404)
