"""A person's experience reports and helpful votes: in their data download, and gone with their account."""

from __future__ import annotations

import io
import json
import zipfile

from peerlift.experience.models import ExperienceReport, HelpfulVote
from peerlift.db import transaction
from tests.conftest import PASSWORD
from tests.experience.helpers import community_of_two, report


def test_the_download_holds_my_reports_and_my_helpful_votes_only(world, client_for):
    community_id, _coach, alice, bob = community_of_two(world, client_for)
    mine = report(alice, community_id, side_effects=["nausea", "tiredness"]).json()
    theirs = report(bob, community_id, treatment="Walking").json()
    alice.put(f"/api/v1/experience-reports/{theirs['id']}/helpful")
    bob.put(f"/api/v1/experience-reports/{mine['id']}/helpful")
    response = alice.get("/api/v1/me/export")
    assert response.status_code == 200, response.text
    data = json.loads(zipfile.ZipFile(io.BytesIO(response.content)).read("peerlift-data.json"))
    [row] = data["experience_reports"]
    assert (row["id"], row["treatment_code"], row["side_effects"], row["circle_name"]) == (
        mine["id"], "A10BA02", ["nausea", "tiredness"], "Type 2 diabetes")
    assert [(v["target_type"], v["target_id"]) for v in data["helpful_votes"]] == [("experience", theirs["id"])]


def test_deleting_the_account_blanks_and_deletes_reports_and_removes_votes(world, client_for):
    community_id, coach, alice, bob = community_of_two(world, client_for)
    mine = report(alice, community_id, what_helped="Ginger tea.").json()
    theirs = report(bob, community_id, treatment="Walking").json()
    alice.put(f"/api/v1/experience-reports/{theirs['id']}/helpful")
    coach.post(f"/api/v1/communities/{community_id}/guide", json={"target_type": "experience",
                                                                  "target_id": mine["id"]})
    assert alice.get("/api/v1/me/deletion").json()["counts"]["experience_reports"] == 1
    done = alice.post("/api/v1/me/deletion", json={"password": PASSWORD, "confirm": True})
    assert done.status_code == 200, done.text
    assert done.json()["removed"]["experience_reports"] == 1 and done.json()["removed"]["helpful_votes"] == 1
    with transaction(write=False) as s:
        gone = s.get(ExperienceReport, mine["id"])
        assert gone.deleted_at is not None and gone.what_helped == "" and gone.search_text == ""
        assert s.query(HelpfulVote).count() == 0
    assert bob.get(f"/api/v1/communities/{community_id}/guide").json() == []
    assert [a["treatment_name"] for a in bob.get(f"/api/v1/communities/{community_id}/experience-aggregates").json()] \
        == ["Walking"]
    assert bob.get("/api/v1/search", params={"q": "ginger"}).json()["results"] == []
