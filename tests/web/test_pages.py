"""The server-rendered pages work without JavaScript: forms, CSRF, redirects, errors."""

from __future__ import annotations

from peerlift.community.models import Comment, Post, Reaction
from peerlift.identity.models import AuthSession
from tests.conftest import PASSWORD, count_rows, form_token


def _sign_in(client, person):
    page = client.get("/login")
    response = client.post("/login", data={"email": person.email, "password": PASSWORD,
                                           "csrf_token": form_token(page.text), "next": "/circles"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return response


def test_signed_out_pages_redirect_to_sign_in(world, anon):
    response = anon.get(f"/circles/{world.circle.id}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next=/circles/{world.circle.id}"


def test_sign_in_form_and_wrong_password(world, anon):
    page = anon.get("/login")
    assert page.status_code == 200 and 'autocomplete="current-password"' in page.text
    bad = anon.post("/login", data={"email": world.alice.email, "password": "wrong password",
                                    "csrf_token": form_token(page.text)})
    assert bad.status_code == 401 and "The email address or the password is not right." in bad.text
    assert count_rows(AuthSession) == 0
    assert _sign_in(anon, world.alice).headers["location"] == "/circles"
    assert "Morning Movers" in anon.get("/circles").text


def test_sign_in_form_without_csrf_token_is_refused(world, anon):
    anon.get("/login")
    response = anon.post("/login", data={"email": world.alice.email, "password": PASSWORD})
    assert response.status_code == 403 and "security token" in response.text
    assert count_rows(AuthSession) == 0


def test_open_redirects_are_not_followed(world, anon):
    page = anon.get("/login")
    response = anon.post("/login", data={"email": world.alice.email, "password": PASSWORD, "next": "//evil.test/x",
                                         "csrf_token": form_token(page.text)}, follow_redirects=False)
    assert response.headers["location"] == "/circles"


def test_post_comment_react_vote_through_forms(world, anon):
    _sign_in(anon, world.alice)
    feed = anon.get(f"/circles/{world.circle.id}")
    token = form_token(feed.text)
    anon.post(f"/circles/{world.circle.id}/rules", data={"csrf_token": token})
    response = anon.post(f"/circles/{world.circle.id}/posts", follow_redirects=False, data={
        "csrf_token": token, "body": "Group walk this weekend?", "poll_question": "Which day?",
        "poll_options": "Saturday\nSunday\n"})
    assert response.status_code == 303
    post_id = int(response.headers["location"].rsplit("-", 1)[1])
    page = anon.get(f"/circles/{world.circle.id}").text
    assert "Group walk this weekend?" in page and "Results show after you vote." in page
    assert anon.post(f"/posts/{post_id}/comments", data={"csrf_token": token, "body": "Count me in"}).status_code == 200
    anon.post(f"/posts/{post_id}/react", data={"csrf_token": token, "kind": "clap", "on": "true"})
    anon.post(f"/posts/{post_id}/react", data={"csrf_token": token, "kind": "clap", "on": "true"})
    assert count_rows(Comment) == 1 and count_rows(Reaction) == 1
    from sqlalchemy import select

    from peerlift import db as dbmod
    from peerlift.community.models import PollOption

    with dbmod.transaction(write=False) as s:
        poll_id, sunday = s.execute(select(PollOption.poll_id, PollOption.id).where(PollOption.text == "Sunday")).one()
    anon.post(f"/polls/{poll_id}/vote", data={"csrf_token": token, "option_ids": str(sunday)})
    detail = anon.get(f"/posts/{post_id}").text
    assert "Count me in" in detail and "1 vote" in detail


def test_form_errors_render_readable_pages_and_write_nothing(world, anon):
    _sign_in(anon, world.alice)
    token = form_token(anon.get("/circles").text)
    anon.post(f"/circles/{world.circle.id}/rules", data={"csrf_token": token})
    empty = anon.post(f"/circles/{world.circle.id}/posts", data={"csrf_token": token, "body": "   "})
    assert empty.status_code == 422 and "The post is empty" in empty.text
    poll = anon.post(f"/circles/{world.circle.id}/posts", data={
        "csrf_token": token, "body": "hi", "poll_question": "Q?", "poll_options": "only one"})
    assert poll.status_code == 422 and "at least 2 options" in poll.text and "only one" in poll.text
    assert count_rows(Post) == 0
    no_token = anon.post(f"/circles/{world.circle.id}/posts", data={"body": "sneaky"})
    assert no_token.status_code == 403
    assert count_rows(Post) == 0


def test_foreign_circle_page_is_not_found(world, anon):
    _sign_in(anon, world.alice)
    response = anon.get(f"/circles/{world.other_circle.id}")
    assert response.status_code == 404 and "Not found" in response.text


def test_security_headers(world, anon):
    response = anon.get("/login")
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_pages_render_for_every_role(world, client_for):
    from tests.conftest import login

    for person in (world.alice, world.pat, world.coach, world.clinician, world.researcher, world.admin):
        client = client_for(None)
        login(client, person)
        for url in ("/circles", "/messages", "/profile"):
            assert client.get(url).status_code == 200, (person.display_name, url)


def test_change_password_form(world, anon):
    _sign_in(anon, world.alice)
    page = anon.get("/profile")
    token = form_token(page.text)
    wrong = anon.post("/profile/password", data={"csrf_token": token, "current_password": "nope nope nope",
                                                 "new_password": "another long password"})
    assert wrong.status_code == 401 and "The current password is not right." in wrong.text
    ok = anon.post("/profile/password", data={"csrf_token": token, "current_password": PASSWORD,
                                              "new_password": "another long password"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/profile?saved=1"
