"""Open communities: created by staff, browsed and joined by anyone signed in, read by members only,
where people go by a community name and may post anonymously when the community allows it."""

from __future__ import annotations

import json

from peerlift.community.models import Membership, Post, Space, SpaceKind
from peerlift.delivery.hub import frame
from peerlift.events import Event
from peerlift.identity.models import User
from peerlift.notify.models import Notification
from peerlift.safety.models import Escalation
from peerlift.db import transaction
from tests.conftest import assert_error, count_rows, form_token

GUIDELINES = "Be kind. No medical advice."


def _community(client, name="Quitting smoking", allow_anonymous=True, rules=GUIDELINES) -> dict:
    created = client.post("/api/v1/communities", json={
        "name": name, "description": "Stopping for good, together.", "rules": rules,
        "allow_anonymous": allow_anonymous})
    assert created.status_code == 201, created.text
    return created.json()


def _join(client, community_id, pseudonym, accept=True):
    return client.post(f"/api/v1/communities/{community_id}/membership",
                       json={"pseudonym": pseudonym, "accept_guidelines": accept})


def test_staff_create_communities_and_participants_may_not(world, client_for):
    body = _community(client_for(world.coach))
    assert (body["name"], body["my_role"], body["member_count"], body["joined"], body["allow_anonymous"]) == (
        "Quitting smoking", "facilitator", 1, True, True)
    admin = _community(client_for(world.admin), name="Long COVID", allow_anonymous=False)
    assert admin["my_role"] == "facilitator"
    before = count_rows(Space)
    assert_error(client_for(world.alice).post("/api/v1/communities", json={"name": "Mine"}), 403)
    assert_error(client_for(world.coach).post("/api/v1/communities", json={"name": " "}), 422, "invalid", "name")
    assert count_rows(Space) == before


def test_the_creator_gets_a_community_name_not_their_real_name(world, client_for):
    _community(client_for(world.coach))
    with transaction(write=False) as session:
        coach = session.get(User, world.coach.id)
    assert coach.pseudonym and coach.pseudonym != coach.display_name


def test_anyone_signed_in_browses_and_joins_and_leaves(world, client_for, anon):
    community = _community(client_for(world.coach))
    carol = client_for(world.carol)  # in another arm of the trial: communities have no arm
    listed = carol.get("/api/v1/communities").json()
    assert [(c["name"], c["member_count"], c["joined"]) for c in listed] == [("Quitting smoking", 1, False)]
    assert carol.get(f"/api/v1/communities/{community['id']}").json()["rules"] == GUIDELINES
    assert anon.get("/api/v1/communities").status_code == 401

    joined = _join(carol, community["id"], "Steady Otter 17")
    assert joined.status_code == 201, joined.text
    assert (joined.json()["joined"], joined.json()["member_count"], joined.json()["my_role"]) == (True, 2, "member")
    membership = count_rows(Membership, Membership.user_id == world.carol.id)
    # joining twice: a clear 409 and nothing written
    error = assert_error(_join(carol, community["id"], "Other Name 11"), 409, "conflict", "community_id")
    assert "already a member" in error["message"]
    assert count_rows(Membership, Membership.user_id == world.carol.id) == membership

    assert carol.delete(f"/api/v1/communities/{community['id']}/membership").status_code == 204
    assert count_rows(Membership, Membership.user_id == world.carol.id) == membership - 1
    assert_error(carol.delete(f"/api/v1/communities/{community['id']}/membership"), 404)
    # joining again keeps the community name chosen before
    assert _join(carol, community["id"], None).status_code == 201


def test_joining_needs_the_guidelines_accepted_and_a_community_name(world, client_for):
    community = _community(client_for(world.coach))
    bob = client_for(world.bob)
    assert_error(_join(bob, community["id"], "Brave Robin 33", accept=False), 422, "invalid", "accept_guidelines")
    assert_error(_join(bob, community["id"], None), 422, "invalid", "pseudonym")
    error = assert_error(_join(bob, community["id"], "bob baker"), 422, "invalid", "pseudonym")
    assert "real name" in error["message"]
    assert_error(_join(bob, community["id"], "x"), 422, "invalid", "pseudonym")
    assert _join(client_for(world.alice), community["id"], "Calm Heron 42").status_code == 201
    assert_error(_join(bob, community["id"], "calm heron 42"), 409, "conflict", "pseudonym")
    assert count_rows(Membership, Membership.user_id == world.bob.id, Membership.space_id == community["id"]) == 0
    assert count_rows(User, User.id == world.bob.id, User.pseudonym.is_not(None)) == 0


def test_circles_are_not_communities(world, client_for):
    carol = client_for(world.carol)
    assert_error(carol.get(f"/api/v1/communities/{world.circle.id}"), 404, field="community_id")
    assert_error(_join(carol, world.circle.id, "Steady Otter 17"), 404)
    assert count_rows(Membership, Membership.user_id == world.carol.id, Membership.space_id == world.circle.id) == 0
    community = _community(client_for(world.coach))
    names = [c["name"] for c in client_for(world.alice).get("/api/v1/circles").json()]
    assert "Quitting smoking" not in names and community["id"] not in [c["id"] for c in
                                                                       client_for(world.coach).get("/api/v1/circles").json()]


def test_only_members_read_the_posts(world, client_for):
    community = _community(client_for(world.coach))
    alice = client_for(world.alice)
    _join(alice, community["id"], "Calm Heron 42")
    post = alice.post(f"/api/v1/communities/{community['id']}/posts", json={"body": "Day 3 without one."}).json()
    bob = client_for(world.bob)
    assert_error(bob.get(f"/api/v1/communities/{community['id']}/posts"), 404, field="community_id")
    assert_error(bob.get(f"/api/v1/circles/{community['id']}/posts"), 404)
    assert_error(bob.get(f"/api/v1/posts/{post['id']}"), 404)
    assert bob.get(f"/posts/{post['id']}").status_code == 404
    before = count_rows(Post)
    assert_error(bob.post(f"/api/v1/communities/{community['id']}/posts", json={"body": "Let me in"}), 404)
    assert count_rows(Post) == before
    # the description and guidelines are there for everyone; the posts are not
    page = bob.get(f"/communities/{community['id']}").text
    assert GUIDELINES in page and "Day 3 without one." not in page
    _join(bob, community["id"], "Brave Robin 33")
    feed = bob.get(f"/api/v1/communities/{community['id']}/posts").json()
    assert [p["body"] for p in feed["posts"]] == ["Day 3 without one."]


def test_members_see_the_community_name_never_the_real_name(world, client_for):
    community = _community(client_for(world.coach))
    alice, bob = client_for(world.alice), client_for(world.bob)
    _join(alice, community["id"], "Calm Heron 42")
    _join(bob, community["id"], "Brave Robin 33")
    post = alice.post(f"/api/v1/circles/{community['id']}/posts", json={"body": "Cravings after lunch."}).json()
    alice.post(f"/api/v1/posts/{post['id']}/comments", json={"body": "The walk helps."})
    for url in (f"/api/v1/communities/{community['id']}/posts", f"/api/v1/posts/{post['id']}",
                f"/api/v1/posts/{post['id']}/comments", f"/api/v1/circles/{community['id']}/members"):
        text = bob.get(url).text
        assert "Calm Heron 42" in text, url
        assert world.alice.display_name not in text and world.alice.handle not in text, url
        assert f'"id":{world.alice.id},' not in text.replace(" ", ""), url
    for url in (f"/circles/{community['id']}", f"/posts/{post['id']}", f"/circles/{community['id']}/members"):
        html = bob.get(url).text
        assert "Calm Heron 42" in html and world.alice.display_name not in html, url
    # circles keep real names
    circle_post = alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "Walked."}).json()
    assert circle_post["author"]["display_name"] == world.alice.display_name


def test_notifications_in_a_community_name_the_community_name(world, client_for):
    community = _community(client_for(world.coach))
    alice, bob = client_for(world.alice), client_for(world.bob)
    _join(alice, community["id"], "Calm Heron 42")
    _join(bob, community["id"], "Brave Robin 33")
    post = alice.post(f"/api/v1/circles/{community['id']}/posts", json={"body": "Day 1."}).json()
    bob.post(f"/api/v1/posts/{post['id']}/comments", json={"body": "You can do it."})
    text = alice.get("/api/v1/notifications").text
    assert "Brave Robin 33" in text and world.bob.display_name not in text


def test_anonymous_posts_hide_the_author_from_members_not_from_moderators(world, client_for):
    community = _community(client_for(world.coach))
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    _join(alice, community["id"], "Calm Heron 42")
    _join(bob, community["id"], "Brave Robin 33")
    created = alice.post(f"/api/v1/circles/{community['id']}/posts",
                         json={"body": f"I relapsed at the weekend. @{world.bob.handle}", "anonymous": True})
    assert created.status_code == 201, created.text
    post = created.json()
    assert post["anonymous"] is True
    seen = bob.get(f"/api/v1/posts/{post['id']}").json()
    assert (seen["author"]["display_name"], seen["author"]["id"]) == ("Anonymous member", 0)
    for text in (bob.get(f"/api/v1/communities/{community['id']}/posts").text, bob.get(f"/circles/{community['id']}").text,
                 bob.get(f"/posts/{post['id']}").text):
        assert "Anonymous member" in text and "Calm Heron 42" not in text and world.alice.display_name not in text
    moderator = coach.get(f"/api/v1/posts/{post['id']}").json()
    assert (moderator["author"]["display_name"], moderator["author"]["id"]) == ("Calm Heron 42", world.alice.id)
    assert "posted anonymously" in coach.get(f"/circles/{community['id']}").text
    # the mention tells bob without naming the author, here or on the live stream
    notes = bob.get("/api/v1/notifications").json()
    mention = next(n for n in notes["notifications"] if n["kind"] == "mention")
    assert mention["actor_name"] is None and "Calm Heron" not in mention["text"]
    # the review queue: the facilitator sees who wrote it (by community name)
    flag = bob.post("/api/v1/flags", json={"object_type": "post", "object_id": post["id"], "reason": "privacy",
                                           "note": "check in?"})
    assert flag.status_code == 201, flag.text
    queue = coach.get(f"/api/v1/circles/{community['id']}/review").json()
    assert [(i["object_id"], i["author_name"], i["author_id"]) for i in queue] == [
        (post["id"], "Calm Heron 42", world.alice.id)]


def test_live_events_of_a_community_carry_no_account_ids(world, client_for):
    from sqlalchemy import select

    community = _community(client_for(world.coach))
    alice = client_for(world.alice)
    _join(alice, community["id"], "Calm Heron 42")
    post = alice.post(f"/api/v1/circles/{community['id']}/posts", json={"body": "Hi", "anonymous": True}).json()
    circle_post = alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "Hi"}).json()
    with transaction(write=False) as session:
        event = session.scalar(select(Event).where(Event.kind == "post.created", Event.object_id == post["id"]))
        assert event.actor_id == world.alice.id  # recorded for engagement measures
        data = json.loads(frame(event).split("data: ", 1)[1])
        assert data["actor_id"] is None and data["post_id"] == post["id"]
        event = session.scalar(select(Event).where(Event.kind == "post.created", Event.object_id == circle_post["id"]))
        assert json.loads(frame(event).split("data: ", 1)[1])["actor_id"] == world.alice.id


def test_anonymous_posts_are_refused_where_not_allowed(world, client_for):
    community = _community(client_for(world.coach), allow_anonymous=False)
    alice = client_for(world.alice)
    _join(alice, community["id"], "Calm Heron 42")
    before = count_rows(Post)
    error = assert_error(alice.post(f"/api/v1/circles/{community['id']}/posts",
                                    json={"body": "Secret", "anonymous": True}), 422, "invalid", "anonymous")
    assert "does not allow anonymous" in error["message"]
    assert_error(alice.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "Secret", "anonymous": True}),
                 422, "invalid", "anonymous")
    assert count_rows(Post) == before


def test_a_crisis_post_in_a_community_opens_an_escalation(world, client_for):
    from sqlalchemy import select

    community = _community(client_for(world.coach))
    alice = client_for(world.alice)
    _join(alice, community["id"], "Calm Heron 42")
    created = alice.post(f"/api/v1/circles/{community['id']}/posts",
                         json={"body": "I'm going to kill myself tonight", "anonymous": True})
    assert created.status_code == 201, created.text
    assert created.json()["safety"]["level"] == "crisis"
    with transaction(write=False) as session:
        escalation = session.scalar(select(Escalation).where(Escalation.object_id == created.json()["id"]))
    assert escalation is not None and escalation.space_id == community["id"] and escalation.subject_id == world.alice.id
    # no clinician in the community: the installation's admins hear of it, and see who it is
    assert count_rows(Notification, Notification.user_id == world.admin.id, Notification.kind == "escalation") == 1
    seen = client_for(world.admin).get(f"/api/v1/escalations/{escalation.id}")
    assert seen.json()["subject_name"] == world.alice.display_name


def test_community_members_are_not_reachable_by_direct_message(world, client_for):
    community = _community(client_for(world.coach))
    carol = client_for(world.carol)
    _join(carol, community["id"], "Steady Otter 17")
    # sharing a community is not sharing a circle: alice cannot find carol's account through it
    _join(client_for(world.alice), community["id"], "Calm Heron 42")
    assert_error(client_for(world.alice).post("/api/v1/conversations", json={"user_id": world.carol.id}), 404)


def test_pages_browse_join_with_guidelines_post_and_leave(world, client_for):
    coach = client_for(world.coach)
    form = coach.get("/communities/new").text
    created = coach.post("/communities/new", data={"csrf_token": form_token(form), "name": "Caring for a parent",
                                                   "description": "Dementia carers.", "rules": GUIDELINES,
                                                   "allow_anonymous": "true"}, follow_redirects=False)
    assert created.status_code == 303
    community_id = int(created.headers["location"].rsplit("/", 1)[1])
    assert client_for(world.alice).get("/communities/new").status_code == 403

    bob = client_for(world.bob)
    listing = bob.get("/communities").text
    assert "Caring for a parent" in listing and "1 member" in listing and "Join" in listing
    page = bob.get(f"/communities/{community_id}").text
    assert GUIDELINES in page and 'name="pseudonym"' in page
    refused = bob.post(f"/communities/{community_id}/join", data={"csrf_token": form_token(page),
                                                                  "pseudonym": "Bob Baker"})
    assert refused.status_code == 422 and "real name" in refused.text
    assert count_rows(Membership, Membership.space_id == community_id) == 1
    header = bob.headers.pop("X-CSRF-Token")
    no_token = bob.post(f"/communities/{community_id}/join", data={"pseudonym": "Brave Robin 33",
                                                                   "accept_guidelines": "true"})
    assert no_token.status_code == 403
    assert count_rows(Membership, Membership.space_id == community_id) == 1
    bob.headers["X-CSRF-Token"] = header
    joined = bob.post(f"/communities/{community_id}/join", data={
        "csrf_token": form_token(page), "pseudonym": "Brave Robin 33", "accept_guidelines": "true"},
        follow_redirects=False)
    assert joined.status_code == 303 and joined.headers["location"] == f"/circles/{community_id}"
    feed = bob.get(f"/circles/{community_id}").text
    assert "Share with the community" in feed and "Post anonymously" in feed
    posted = bob.post(f"/circles/{community_id}/posts", data={"csrf_token": form_token(feed), "body": "Hard day.",
                                                               "anonymous": "true"}, follow_redirects=False)
    assert posted.status_code == 303
    assert client_for(world.coach).get(f"/circles/{community_id}").text.count("posted anonymously") == 1
    about = bob.get(f"/communities/{community_id}").text
    left = bob.post(f"/communities/{community_id}/leave", data={"csrf_token": form_token(about)},
                    follow_redirects=False)
    assert left.status_code == 303
    assert count_rows(Membership, Membership.space_id == community_id, Membership.user_id == world.bob.id) == 0
    assert bob.get(f"/circles/{community_id}").status_code == 404


def test_the_only_facilitator_cannot_leave(world, client_for):
    community = _community(client_for(world.coach))
    assert_error(client_for(world.coach).delete(f"/api/v1/communities/{community['id']}/membership"), 409)
    assert count_rows(Membership, Membership.space_id == community["id"]) == 1


def test_space_kind_is_stored(world, client_for):
    community = _community(client_for(world.coach))
    assert count_rows(Space, Space.id == community["id"], Space.kind == SpaceKind.community) == 1


def test_search_shows_community_names_and_keeps_anonymous_authors_hidden(world, client_for):
    community = _community(client_for(world.coach))
    alice, bob, coach = client_for(world.alice), client_for(world.bob), client_for(world.coach)
    _join(alice, community["id"], "Calm Heron 42")
    _join(bob, community["id"], "Brave Robin 33")
    assert alice.post(f"/api/v1/circles/{community['id']}/posts",
                      json={"body": "Patches helped with the cravings", "anonymous": True}).status_code == 201
    assert bob.post(f"/api/v1/circles/{community['id']}/posts",
                    json={"body": "Gum helped with the cravings"}).status_code == 201

    found = bob.get("/api/v1/search", params={"q": "cravings", "space_id": community["id"]})
    assert found.status_code == 200, found.text
    authors = sorted((h["author_name"], h["author_id"]) for h in found.json()["results"])
    assert authors == [("Anonymous member", 0), ("Brave Robin 33", world.bob.id)]
    page = bob.get("/search", params={"q": "cravings"}).text
    results = page[page.index("<main"):]  # (the navigation names bob to himself)
    assert world.alice.display_name not in page and "Calm Heron 42" not in page
    assert world.bob.display_name not in results
    assert "Anonymous member" in results and "Brave Robin 33" in results
    # nobody may pick the anonymous author out by role
    members = bob.get("/api/v1/search", params={"q": "patches", "author_type": "member"}).json()["results"]
    assert members == []
    # the community's facilitator sees who wrote it, by community name
    moderated = coach.get("/api/v1/search", params={"q": "patches"}).json()["results"]
    assert [(h["author_name"], h["author_id"]) for h in moderated] == [("Calm Heron 42", world.alice.id)]
