"""The notification centre and its settings in the browser-less page flow."""

from __future__ import annotations

from tests.conftest import form_token, login, post


def test_notification_page_lists_and_opens(world, client_for):
    alice, bob = client_for(world.alice), client_for(world.bob)
    post_id = post(alice, world.circle, "hello").json()["id"]
    bob.post(f"/api/v1/posts/{post_id}/comments", json={"body": "hi!"})
    page = alice.get("/notifications")
    assert "Bob Baker replied to you in Morning Movers" in page.text
    assert 'id="nav-notifications" data-count="1"' in page.text
    note_id = alice.get("/api/v1/notifications").json()["notifications"][0]["id"]
    opened = alice.post(f"/notifications/{note_id}/open", data={"csrf_token": form_token(page.text)},
                        follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"].startswith(f"/posts/{post_id}#comment-")
    assert alice.get("/api/v1/notifications").json()["unread_count"] == 0


def test_settings_form_saves_and_refuses_bad_times(world, client_for):
    alice = client_for(world.alice)
    page = alice.get("/settings/notifications")
    assert page.status_code == 200 and 'name="channel_reaction"' in page.text
    token = form_token(page.text)
    saved = alice.post("/settings/notifications", data={
        "csrf_token": token, "channel_reaction": "off", "quiet_start": "21:30", "quiet_end": "06:45",
        "digest": "weekly", "digest_hour": "9"}, follow_redirects=False)
    assert saved.status_code == 303
    prefs = alice.get("/api/v1/notification-preferences").json()
    assert (prefs["channels"]["reaction"], prefs["quiet_start"], prefs["digest"]) == ("off", "21:30", "weekly")
    bad = alice.post("/settings/notifications", data={"csrf_token": token, "quiet_start": "9pm"})
    assert bad.status_code == 422 and "24-hour time" in bad.text
    assert alice.get("/api/v1/notification-preferences").json()["quiet_start"] == "21:30"


def test_password_reset_pages(world, anon, mailbox):
    from tests.conftest import run_due

    page = anon.get("/password/forgot")
    sent = anon.post("/password/forgot", data={"csrf_token": form_token(page.text), "email": world.bob.email})
    assert "If an account has this address" in sent.text
    run_due()
    link = next(line for line in mailbox.to(world.bob.email)[0].get_content().splitlines() if "/password/reset/" in line)
    path = link[link.index("/password/reset/"):].strip()
    form = anon.get(path)
    short = anon.post(path, data={"csrf_token": form_token(form.text), "password": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    done = anon.post(path, data={"csrf_token": form_token(form.text), "password": "a new long password"},
                     follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/login?reset=1"
    again = anon.post(path, data={"csrf_token": form_token(form.text), "password": "a new long password"})
    assert again.status_code == 410
    fresh = anon.__class__(anon.app)
    login(fresh, world.bob, "a new long password")
