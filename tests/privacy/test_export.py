"""Downloading all one's data: a zip of one JSON file with everything and one CSV per kind, with
only the person's own data (and what they may see anyway), recorded in the audit trail."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from sqlalchemy import select

from peerlift import db as dbmod
from peerlift.identity.models import AuditEntry
from peerlift.privacy.export import KINDS
from tests.conftest import assert_error, count_rows
from tests.privacy.helpers import ALICE_POST, BOB_SECRET, alice_lives


def _open(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith('attachment; filename="peerlift-data-')
    return zipfile.ZipFile(io.BytesIO(response.content))


def _csv(zf: zipfile.ZipFile, kind: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(zf.read(f"{kind}.csv").decode("utf-8"))))


def test_the_zip_holds_every_kind_as_csv_and_all_of_it_as_json(world, client_for):
    story = alice_lives(world, client_for)
    zf = _open(client_for(world.alice).get("/api/v1/me/export"))
    names = set(zf.namelist())
    assert names == {"peerlift-data.json", "README.txt"} | {f"{k.key}.csv" for k in KINDS}
    for wanted in ("profile", "memberships", "posts", "comments", "reactions", "poll_votes", "direct_messages",
                   "notifications", "tracking_entries", "goals", "questionnaire_responses", "enrolments",
                   "consents", "flags", "sessions", "audit_entries"):
        assert f"{wanted}.csv" in names, wanted
    data = json.loads(zf.read("peerlift-data.json"))
    assert data["person_id"] == world.alice.id and set(data["about"]) == {k.key for k in KINDS}
    for kind in KINDS:  # the CSV files hold the rows of the JSON file, with their header
        rows = _csv(zf, kind.key)
        assert len(rows) == len(data[kind.key]), kind.key
        header = zf.read(f"{kind.key}.csv").decode().splitlines()[0]
        assert header == ",".join(kind.columns)

    [profile] = _csv(zf, "profile")
    assert profile["email"] == world.alice.email and profile["display_name"] == "Alice Archer"
    [mine] = [p for p in data["posts"] if p["id"] == story.alice_post]
    assert mine["body"] == ALICE_POST + " Lovely." and mine["poll_options"] == ["Yes", "No"]
    assert [r["body"] for r in data["post_revisions"]] == [ALICE_POST]
    assert [c["id"] for c in data["comments"]] == [story.alice_comment]
    assert [(r["kind"], r["post_id"]) for r in data["reactions"]] == [("heart", story.bob_post)]
    assert [v["option"] for v in data["poll_votes"]] == ["Yes"]
    assert sorted((m["direction"], m["body"]) for m in data["direct_messages"]) == [
        ("received", "Hello Alice, ask away."), ("sent", "Hello coach, a question about steps.")]
    assert {"reply", "message"} <= {n["kind"] for n in data["notifications"]}
    assert [e["value"] for e in data["tracking_entries"]] == [82.1]
    assert [r["value"] for r in data["tracking_entry_revisions"]] == [82.5]
    assert data["goals"][0]["daily_steps"] == 8000
    [response] = data["questionnaire_responses"]
    assert response["instrument"] == "phq9" and response["total"] == 7 and response["band"]
    assert response["answers"] == [1, 1, 2, 1, 0, 1, 1, 0, 0]
    [enrolment] = data["enrolments"]
    assert enrolment["status"] == "consented" and enrolment["study_title"] == "Walk together"
    [signed] = data["consents"]
    assert signed["document_version"] == "1.0" and signed["typed_name"] == "Alice Archer"
    assert signed["on_account_deletion"] == "keep_pseudonymised"
    assert [(f["object_id"], f["reason"]) for f in data["flags"]] == [(story.bob_post, "spam")]
    assert data["sessions"] and not {"token_hash", "csrf_token"} & set(data["sessions"][0])
    assert {"session.started", "profile.updated"} & {a["action"] for a in data["audit_entries"]}
    assert {"post.created", "comment.created"} <= {a["kind"] for a in data["activity"]}


def test_nothing_of_other_people_is_in_it(world, client_for):
    alice_lives(world, client_for)
    # Bob writes something that the triage holds for review (its reasons are his, and clinical)
    bob = client_for(world.bob)
    bob.post(f"/api/v1/circles/{world.circle.id}/posts", json={"body": "I can't go on, I want to end my life."})
    raw = client_for(world.alice).get("/api/v1/me/export").content
    zf = zipfile.ZipFile(io.BytesIO(raw))
    everything = b"".join(zf.read(name) for name in zf.namelist()).decode("utf-8")
    assert BOB_SECRET not in everything          # his post, his direct message to the coach
    assert world.bob.email not in everything and world.coach.email not in everything
    assert "131.7" not in everything              # his weight
    assert "end my life" not in everything
    data = json.loads(zf.read("peerlift-data.json"))
    assert not {"triage", "escalations", "review_items"} & set(data)
    assert all(m["conversation_id"] == data["direct_messages"][0]["conversation_id"]
               for m in data["direct_messages"])
    # the entries of the audit trail are about Alice, and only her own show an address
    assert all(a["ip_address"] == "" for a in data["audit_entries"] if a["by"] != "you")


def test_someone_with_nothing_gets_every_file_with_its_header(world, client_for):
    zf = _open(client_for(world.carol).get("/api/v1/me/export"))
    for kind in KINDS:
        lines = zf.read(f"{kind.key}.csv").decode().splitlines()
        assert lines[0] == ",".join(kind.columns)
    assert len(_csv(zf, "profile")) == 1 and _csv(zf, "posts") == []


def test_text_a_spreadsheet_would_run_is_defused_in_csv_only(world, client_for):
    alice = client_for(world.alice)
    assert alice.patch("/api/v1/me", json={"bio": "=HYPERLINK(\"http://evil.test\")"}).status_code == 200
    zf = _open(alice.get("/api/v1/me/export"))
    assert _csv(zf, "profile")[0]["bio"] == "'=HYPERLINK(\"http://evil.test\")"
    assert json.loads(zf.read("peerlift-data.json"))["profile"][0]["bio"] == "=HYPERLINK(\"http://evil.test\")"


def test_each_download_is_audited(world, client_for):
    alice = client_for(world.alice)
    assert alice.get("/api/v1/me/export").status_code == 200
    assert alice.get("/profile/data/download").status_code == 200
    with dbmod.transaction(write=False) as s:
        entries = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "data.exported")))
    assert [(e.actor_id, e.object_id) for e in entries] == [(world.alice.id, world.alice.id)] * 2


def test_the_download_needs_a_signed_in_person(world, anon):
    assert_error(anon.get("/api/v1/me/export"), 401, "not_authenticated")
    page = anon.get("/profile/data/download", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert count_rows(AuditEntry, AuditEntry.action == "data.exported") == 0


def test_the_data_page_explains_and_links_the_download(world, client_for):
    page = client_for(world.alice).get("/profile/data")
    assert page.status_code == 200
    assert 'href="/profile/data/download"' in page.text
    for kind in KINDS:
        assert f"{kind.key}.csv" in page.text
    assert 'href="/profile/data"' in client_for(world.alice).get("/profile").text


def test_the_health_profile_and_connection_requests_are_in_it(world, client_for):
    from peerlift.people import service as people

    with dbmod.transaction() as s:
        from peerlift.identity.models import User

        alice, bob = s.get(User, world.alice.id), s.get(User, world.bob.id)
        people.save_profile(s, alice, conditions=[{"code": "E11.9", "year": 2019}], treatments=[{"code": "A10BA02"}],
                            goals=["Walk daily"], age_band="45-54", visibility={"conditions": "my_circles"},
                            suggest_me=True)
        people.save_profile(s, bob, conditions=[{"code": "E11.9"}], treatments=[], goals=[], age_band=None,
                            visibility={"conditions": "my_circles"}, suggest_me=True)
        people.request_connection(s, bob, alice.id, "Same diagnosis year?")
    zf = _open(client_for(world.alice).get("/api/v1/me/export"))
    data = json.loads(zf.read("peerlift-data.json"))
    [profile] = data["health_profile"]
    assert profile["conditions"][0]["code"] == "E11.9" and profile["conditions_visibility"] == "my_circles"
    assert profile["goals"] == ["Walk daily"] and profile["suggest_me"] is True
    [request] = data["connection_requests"]
    assert (request["direction"], request["other_person_id"], request["note"]) == (
        "received", world.bob.id, "Same diagnosis year?")
    [row] = _csv(zf, "health_profile")
    assert json.loads(row["conditions"])[0]["code"] == "E11.9"
    # bob's profile is his own: none of it is in alice's download
    assert len(data["health_profile"]) == 1
