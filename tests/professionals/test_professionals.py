"""Applying as a professional, an admin's decisions, and the badge that follows the current status."""

from __future__ import annotations

from peerlift.identity.models import AuditEntry
from peerlift.notify.models import Notification
from peerlift.professionals.models import Professional
from tests.conftest import assert_error, count_rows, form_token
from tests.professionals.helpers import answer, apply, ask, community, join, make_person, revoke, verified


def test_a_person_applies_and_an_admin_verifies(world, client_for):
    nina = make_person("Nina Nurse")
    client = client_for(nina)
    applied = apply(client)
    assert applied.status_code == 201, applied.text
    body = applied.json()
    assert (body["status"], body["profession"], body["profession_label"]) == ("applied", "nurse", "nurse")
    assert client.get("/api/v1/me/professional").json()[0]["status"] == "applied"
    admin = client_for(world.admin)
    waiting = admin.get("/api/v1/admin/professionals", params={"status": "applied"}).json()
    assert [(a["id"], a["email"], a["registration_number"]) for a in waiting] == [(body["id"], nina.email, "12A3456E")]
    decided = admin.post(f"/api/v1/admin/professionals/{body['id']}/verify")
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "verified" and decided.json()["decided_at"]
    # the applicant hears of it, the decision is on the audit trail
    assert count_rows(Notification, Notification.user_id == nina.id, Notification.kind == "professional_decision") == 1
    assert count_rows(AuditEntry, AuditEntry.action == "professional.verified", AuditEntry.object_id == body["id"]) == 1
    assert count_rows(AuditEntry, AuditEntry.action == "professional.applied") == 1
    assert "Verified nurse" in client.get("/profile").text
    assert "Verified nurse" in client.get("/profile/professional").text


def test_bad_applications_are_refused_and_nothing_is_written(world, client_for):
    client = client_for(make_person("Nina Nurse"))
    assert_error(apply(client, profession="wizard"), 422, "invalid", "profession")
    assert_error(apply(client, number=""), 422, "invalid", "registration_number")
    assert_error(apply(client, number="   "), 422, "invalid", "registration_number")
    assert_error(apply(client, number="9" * 65), 422, "invalid", "registration_number")
    assert_error(apply(client, profession="other"), 422, "invalid", "profession_other")
    assert_error(apply(client, registry="r" * 121), 422, "invalid", "registry")
    assert_error(client.post("/api/v1/me/professional", json={"profession": "nurse"}), 422)
    assert count_rows(Professional) == 0
    other = apply(client, profession="other", profession_other="Podiatrist")
    assert other.status_code == 201 and other.json()["profession_label"] == "Podiatrist"


def test_one_open_application_at_a_time_and_again_after_a_rejection(world, client_for):
    client, admin = client_for(make_person("Nina Nurse")), client_for(world.admin)
    first = apply(client).json()
    assert_error(apply(client, profession="midwife"), 409, "already_applied", "profession")
    assert count_rows(Professional) == 1
    assert_error(admin.post(f"/api/v1/admin/professionals/{first['id']}/reject", json={"reason": ""}),
                 422, "invalid", "reason")
    rejected = admin.post(f"/api/v1/admin/professionals/{first['id']}/reject",
                          json={"reason": "The number is not on the register."})
    assert rejected.json()["status"] == "rejected"
    assert "not on the register" in client.get("/profile/professional").text
    second = apply(client, number="12A3456F")
    assert second.status_code == 201
    admin.post(f"/api/v1/admin/professionals/{second.json()['id']}/verify")
    assert_error(apply(client), 409, "already_applied")
    assert [a["status"] for a in client.get("/api/v1/me/professional").json()] == ["verified", "rejected"]


def test_only_admins_decide_and_only_undecided_applications(world, client_for):
    application = apply(client_for(make_person("Nina Nurse"))).json()
    for person in (world.alice, world.coach, world.clinician):
        assert_error(client_for(person).post(f"/api/v1/admin/professionals/{application['id']}/verify"), 403)
        assert_error(client_for(person).get("/api/v1/admin/professionals"), 403)
    assert count_rows(Professional, Professional.status == "applied") == 1
    admin = client_for(world.admin)
    assert_error(admin.post("/api/v1/admin/professionals/999999/verify"), 404, field="application_id")
    assert_error(admin.post(f"/api/v1/admin/professionals/{application['id']}/revoke", json={"reason": "x"}),
                 409, "already_decided", "application_id")
    assert admin.post(f"/api/v1/admin/professionals/{application['id']}/verify").status_code == 200
    assert_error(admin.post(f"/api/v1/admin/professionals/{application['id']}/verify"), 409, "already_decided")
    assert_error(admin.post(f"/api/v1/admin/professionals/{application['id']}/reject", json={"reason": "x"}), 409)
    assert_error(admin.get("/api/v1/admin/professionals", params={"status": "maybe"}), 422, field="status")


def test_the_badge_shows_wherever_the_person_writes_and_a_revocation_removes_it(world, client_for):
    nina = make_person("Nina Nurse")
    coach = client_for(world.coach)
    space = community(coach)
    nurse, alice = client_for(nina), client_for(world.alice)
    join(nurse, space["id"], "Night Shift Nina")
    join(alice, space["id"], "Calm Heron 42")
    application_id = verified(nina, world.admin)
    question = ask(alice, space["id"])
    written = nurse.post(f"/api/v1/communities/{space['id']}/posts", json={"body": "Foot checks matter daily."})
    reply = answer(nurse, question["id"], as_professional=True).json()
    feed = alice.get(f"/api/v1/communities/{space['id']}/posts").json()["posts"]
    assert {p["id"]: p["author"]["professional"] for p in feed} == {written.json()["id"]: "nurse",
                                                                    question["id"]: None}
    assert alice.get(f"/api/v1/posts/{question['id']}/comments").json()[0]["author"]["professional"] == "nurse"
    page = alice.get(f"/posts/{question['id']}").text
    assert "Verified nurse" in page and "Answer from a verified nurse" in page
    assert "Verified nurse" in alice.get(f"/circles/{space['id']}").text
    assert "Verified nurse" in alice.get(f"/circles/{space['id']}/members").text
    hits = alice.get("/api/v1/search", params={"q": "foot"}).json()["results"]
    assert [(h["author_professional"], h["author_type"]) for h in hits] == [("nurse", "professional")]

    revoke(application_id, world.admin)
    feed = alice.get(f"/api/v1/communities/{space['id']}/posts").json()["posts"]
    assert all(p["author"]["professional"] is None for p in feed)
    [shown] = alice.get(f"/api/v1/posts/{question['id']}/comments").json()
    # the answer stays marked as written as a professional, but no longer vouched for
    assert (shown["id"], shown["as_professional"], shown["professional_answer"]) == (reply["id"], True, None)
    assert shown["author"]["professional"] is None and shown["disclaimer"]
    page = alice.get(f"/posts/{question['id']}").text
    assert "Verified nurse" not in page and "no longer verified" in page
    assert "withdrawn" in nurse.get("/profile").text
    assert count_rows(Notification, Notification.user_id == nina.id, Notification.kind == "professional_decision") == 2


def test_anonymous_posts_never_show_the_badge(world, client_for):
    nina = make_person("Nina Nurse")
    coach = client_for(world.coach)
    created = coach.post("/api/v1/communities", json={"name": "Quiet", "allow_anonymous": True})
    space = created.json()
    nurse, alice = client_for(nina), client_for(world.alice)
    join(nurse, space["id"], "Night Shift Nina")
    join(alice, space["id"], "Calm Heron 42")
    verified(nina, world.admin)
    post = nurse.post(f"/api/v1/communities/{space['id']}/posts", json={"body": "Tired today.", "anonymous": True})
    seen = alice.get(f"/api/v1/posts/{post.json()['id']}").json()["author"]
    assert seen == {**seen, "display_name": "Anonymous member", "professional": None}
    assert nurse.get(f"/api/v1/posts/{post.json()['id']}").json()["author"]["professional"] is None


def test_admins_decide_on_the_admin_page(world, client_for):
    application = apply(client_for(make_person("Nina Nurse"))).json()
    admin = client_for(world.admin)
    listing = admin.get("/admin/professionals")
    assert listing.status_code == 200 and "12A3456E" in listing.text
    token = form_token(listing.text)
    done = admin.post(f"/admin/professionals/{application['id']}/verify", data={"csrf_token": token},
                      follow_redirects=False)
    assert done.status_code == 303
    again = admin.post(f"/admin/professionals/{application['id']}/verify", data={"csrf_token": token})
    assert again.status_code == 409 and "only an application that is applied" in again.text
    assert client_for(world.alice).get("/admin/professionals").status_code == 403
    assert count_rows(Professional, Professional.status == "verified") == 1


def test_applications_are_in_the_personal_data_download(world, client_for):
    import io
    import json
    import zipfile

    client = client_for(world.alice)
    apply(client)
    archive = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/me/export").content))
    data = json.loads(archive.read("peerlift-data.json"))
    [row] = data["professional_applications"]
    assert (row["profession"], row["registration_number"], row["status"]) == ("nurse", "12A3456E", "applied")
    assert "professional_applications.csv" in archive.namelist()


def test_deleting_the_account_removes_the_applications_and_the_accepted_answer(world, client_for):
    from tests.conftest import PASSWORD

    nina = make_person("Nina Nurse")
    space = community(client_for(world.coach))
    nurse, alice = client_for(nina), client_for(world.alice)
    join(nurse, space["id"], "Night Shift Nina")
    join(alice, space["id"], "Calm Heron 42")
    verified(nina, world.admin)
    question = ask(alice, space["id"], for_professionals=True)
    reply = answer(nurse, question["id"], as_professional=True).json()
    assert alice.put(f"/api/v1/posts/{question['id']}/accepted-answer",
                     json={"comment_id": reply["id"]}).status_code == 200
    deleted = nurse.post("/api/v1/me/deletion", json={"password": PASSWORD, "confirm": True})
    assert deleted.status_code in (200, 202, 204), deleted.text
    assert count_rows(Professional, Professional.user_id == nina.id) == 0
    assert alice.get(f"/api/v1/posts/{question['id']}").json()["accepted_comment_id"] is None
    assert alice.get(f"/api/v1/posts/{question['id']}/comments").json() == []
