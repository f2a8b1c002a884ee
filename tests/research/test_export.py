"""Exports: CSV, Parquet (read by DuckDB and pandas), FHIR R4B, DPRP; pseudonyms, free text,
withdrawal, and every bad input (clear message, non-zero exit, no partial files)."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
from typer.testing import CliRunner

from peerlift import db as dbmod
from peerlift.cli import app
from peerlift.research.analytics_models import StudyKey
from peerlift.research.models import EnrolmentStatus, StudyDesign
from tests.conftest import count_rows
from tests.research.analytics_factory import at, comment, design, enrol, log, post, questionnaire, react

runner = CliRunner()


def _dm(s, sender, recipient, body, moment):
    from peerlift.community import service as community
    from peerlift.db import clock_at
    from peerlift.policy import conversation_access

    with clock_at(moment):
        conv = community.open_conversation(s, sender, recipient)
        community.send_message(s, sender, conversation_access(s, sender, conv.id), body)


@pytest.fixture
def trial(world):
    """Alice and Carol consented and randomised; Bob withdrew and asked for his data to be deleted;
    Pat was only screened. Alice writes a phone number into a post and messages the coach."""
    w = world
    with dbmod.transaction() as s:
        design(s, w.study, dprp_orgcode="ORG123", withdrawal_rule="keep: data up to withdrawal is kept")
        enrol(s, w.study, w.alice, w.arm_a, w.circle, answers={
            "age": 54, "sex": "female", "ethnicity": "not_hispanic", "race": ["white"], "height_in": 65,
            "education": "college_4", "state": "ny", "glucose_test": "yes", "payer": 3})
        enrol(s, w.study, w.carol, w.arm_b, w.other_circle, answers={"age": 61})
        enrol(s, w.study, w.bob, w.arm_a, w.circle, status=EnrolmentStatus.withdrawn, withdrawal_data="delete")
        enrol(s, w.study, w.pat, w.arm_a, w.circle, status=EnrolmentStatus.eligible)
        p = post(s, w.alice, w.circle, "Call me on 07700 900123 any time", at(1, 1))
        comment(s, w.coach, w.circle, p, "Welcome!", at(1, 2))
        comment(s, w.bob, w.circle, p, "Bob was here", at(1, 3))
        react(s, w.carol, w.other_circle, post(s, w.carol, w.other_circle, "Hi B", at(2)), at(2, 1))
        post(s, w.pat, w.circle, "Pat's post", at(2, 2))
        _dm(s, w.alice, w.coach, "A private question", at(3))
        log(s, w.alice, "weight", 80, 1, unit="kg")
        log(s, w.alice, "weight", 79.5, 8, unit="kg")
        log(s, w.alice, "steps", 6000, 2)
        log(s, w.alice, "active_minutes", 40, 2)
        log(s, w.alice, "mood", 7, 3)
        questionnaire(s, w.alice, w.coach, 4, answers=[1, 1, 0, 0, 2, 0, 0, 1, 0])
    return w


def _csv(path):
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_csv_export_is_pseudonymised_scrubbed_and_complete(trial, tmp_path):
    w = trial
    out = tmp_path / "csv"
    result = runner.invoke(app, ["export", "--study", "trial", "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    for table in ("participants", "enrolments", "consents", "allocations", "circles", "posts", "comments",
                  "reactions", "dms", "engagement_events", "tracking_entries", "questionnaire_responses",
                  "deliveries", "cue_decisions"):
        assert f"{table}.csv" in names
    assert {"data_dictionary.csv", "manifest.json"} <= names
    participants = _csv(out / "participants.csv")
    assert len(participants) == 2 and {p["arm"] for p in participants} == {"a", "b"}
    pids = {p["participant"] for p in participants}
    assert all(p.startswith("P") and len(p) == 17 for p in pids)
    everything = "".join(p.read_text(encoding="utf-8") for p in out.iterdir())
    for person in (w.alice, w.carol, w.bob, w.coach):
        assert person.email not in everything and person.display_name not in everything
        assert person.handle not in everything
    assert "07700 900123" not in everything and "[phone]" in everything
    assert "A private question" not in everything and "Bob was here" not in everything  # DM text; deleted data
    assert "Pat's post" not in everything  # never randomised
    posts = _csv(out / "posts.csv")
    assert [p["body"] for p in posts if p["author"] in pids] == ["Call me on [phone] any time", "Hi B"]
    comments = _csv(out / "comments.csv")
    assert [c["author"][0] for c in comments] == ["S"]  # the coach's, pseudonymised as staff
    dms = _csv(out / "dms.csv")
    assert len(dms) == 1 and dms[0]["length"] == str(len("A private question"))
    weights = [e for e in _csv(out / "tracking_entries.csv") if e["measure"] == "weight"]
    assert [float(e["value"]) for e in weights] == [80.0, 79.5]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["study"]["slug"] == "trial" and manifest["software"]["version"]
    for f in manifest["files"]:
        assert hashlib.sha256((out / f["file"]).read_bytes()).hexdigest() == f["sha256"]
        if f["file"] not in ("data_dictionary.csv",):
            assert f["rows"] == len(_csv(out / f["file"]))
    dictionary = _csv(out / "data_dictionary.csv")
    assert {"variable", "table", "type", "unit", "description", "allowed_values"} == set(dictionary[0])
    assert any(d["variable"] == "draw" and d["table"] == "cue_decisions" for d in dictionary)
    # The key stays in the database and is not in the export.
    with dbmod.transaction(write=False) as s:
        key = s.get(StudyKey, w.study.id).pseudonym_key
    assert key not in everything


def test_pseudonyms_are_stable_between_exports(trial, tmp_path):
    for name in ("one", "two"):
        assert runner.invoke(app, ["export", "--study", "trial", "--format", "csv", "--out",
                                   str(tmp_path / name)]).exit_code == 0
    assert _csv(tmp_path / "one" / "participants.csv") == _csv(tmp_path / "two" / "participants.csv")


def test_no_free_text_leaves_text_out(trial, tmp_path):
    out = tmp_path / "plain"
    assert runner.invoke(app, ["export", "--study", "trial", "--format", "csv", "--out", str(out),
                               "--no-free-text"]).exit_code == 0
    posts = _csv(out / "posts.csv")
    assert posts and "body" not in posts[0]
    assert "Call me" not in "".join(p.read_text() for p in out.iterdir())


def test_withdrawn_keep_exports_rows_up_to_withdrawal(world, tmp_path):
    w = world
    with dbmod.transaction() as s:
        design(s, w.study, withdrawal_rule="delete everything")
        enrol(s, w.study, w.alice, w.arm_a, w.circle, status=EnrolmentStatus.withdrawn, withdrawal_data="keep")
        enrol(s, w.study, w.bob, w.arm_a, w.circle, status=EnrolmentStatus.withdrawn)  # the study's rule: delete
        post(s, w.alice, w.circle, "before", at(2))
        post(s, w.alice, w.circle, "after", at(12))
        post(s, w.bob, w.circle, "bob before", at(2))
    assert runner.invoke(app, ["export", "--study", str(w.study.id), "--format", "csv",
                               "--out", str(tmp_path / "x")]).exit_code == 0
    assert [p["body"] for p in _csv(tmp_path / "x" / "posts.csv")] == ["before"]
    assert len(_csv(tmp_path / "x" / "participants.csv")) == 1


def test_parquet_is_typed_and_read_by_duckdb_and_pandas(trial, tmp_path):
    import duckdb
    import pandas as pd

    out = tmp_path / "pq"
    assert runner.invoke(app, ["export", "--study", "trial", "--format", "parquet", "--out", str(out)]).exit_code == 0
    csv_out = tmp_path / "csv"
    assert runner.invoke(app, ["export", "--study", "trial", "--format", "csv", "--out", str(csv_out)]).exit_code == 0
    frame = pd.read_parquet(out / "tracking_entries.parquet")
    assert str(frame["value"].dtype) == "float64" and str(frame["recorded_at"].dt.tz) == "UTC"
    assert len(frame) == len(_csv(csv_out / "tracking_entries.csv"))
    con = duckdb.connect()
    for table in ("participants", "posts", "engagement_events", "questionnaire_responses"):
        n = con.execute(f"SELECT count(*) FROM read_parquet('{out / (table + '.parquet')}')").fetchone()[0]
        assert n == len(_csv(csv_out / f"{table}.csv")), table
    kinds = dict(con.execute(f"DESCRIBE SELECT * FROM read_parquet('{out / 'posts.parquet'}')").fetchall()
                 and [(r[0], r[1]) for r in con.execute(
                     f"DESCRIBE SELECT * FROM read_parquet('{out / 'posts.parquet'}')").fetchall()])
    assert kinds["post_id"] == "BIGINT" and kinds["deleted"] == "BOOLEAN" and kinds["created_at"].startswith("TIMESTAMP")


def test_fhir_bundle_validates(trial, tmp_path):
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B import get_fhir_model_class

    out = tmp_path / "fhir"
    result = runner.invoke(app, ["export", "--study", "trial", "--format", "fhir", "--out", str(out)])
    assert result.exit_code == 0, result.output
    raw = json.loads((out / "bundle.json").read_text())
    bundle = Bundle.model_validate(raw)
    kinds = {}
    for entry in raw["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)  # each one validates
        kinds.setdefault(resource["resourceType"], []).append(resource)
    assert len(bundle.entry) == len(raw["entry"])
    assert {"ResearchStudy", "ResearchSubject", "Patient", "Consent", "Observation", "Questionnaire",
            "QuestionnaireResponse"} <= set(kinds)
    assert len(kinds["Patient"]) == 2 and all("name" not in p for p in kinds["Patient"])
    weights = [o for o in kinds["Observation"] if o["code"].get("coding", [{}])[0].get("code") == "29463-7"]
    assert [o["valueQuantity"]["value"] for o in weights] == [80.0, 79.5]
    assert weights[0]["valueQuantity"]["code"] == "kg"
    assert any(o["code"].get("coding", [{}])[0].get("code") == "41950-7" for o in kinds["Observation"])
    phq9 = [q for q in kinds["Questionnaire"] if q["id"] == "q-phq9"][0]
    assert phq9["code"][0]["code"] == "44249-1"
    response = kinds["QuestionnaireResponse"][0]
    assert response["item"][-1] == {"linkId": "total", "answer": [{"valueInteger": 5}]}


def test_dprp_file(trial, tmp_path):
    out = tmp_path / "dprp"
    result = runner.invoke(app, ["export", "--study", "trial", "--format", "dprp", "--out", str(out), "--arm", "a"])
    import traceback
    assert result.exit_code == 0, "".join(traceback.format_exception(result.exception))
    rows = _csv(out / "dprp.csv")
    assert list(rows[0]) == ["ORGCODE", "PARTICIP", "ENROLLMOT", "ENROLLHC", "PAYERSOURCE", "STATE", "GLUCTEST",
                             "GDM", "RISKTEST", "AGE", "ETHNIC", "AIAN", "ASIAN", "BLACK", "NHOPI", "WHITE", "SEX",
                             "HEIGHT", "EDU", "DMODE", "SESSID", "SESSTYPE", "DATE", "WEIGHT", "PA"]
    # Alice took part in weeks 1 and 2 (days 1-4 and day 8): sessions 1 and 2.
    assert [r["SESSID"] for r in rows] == ["1", "2"]
    first = rows[0]
    assert (first["ORGCODE"], first["DMODE"], first["SESSTYPE"], first["AGE"], first["SEX"], first["WHITE"],
            first["BLACK"], first["STATE"], first["GLUCTEST"], first["PAYERSOURCE"]) == \
        ("ORG123", "2", "C", "54", "2", "1", "2", "NY", "1", "3")
    assert (first["GDM"], first["RISKTEST"], first["HEIGHT"]) == ("2", "2", "65")
    assert first["DATE"] == at(1, 1).strftime("%m/%d/%Y")
    assert first["WEIGHT"] == str(round(80 / 0.45359237)) and first["PA"] == "40"
    assert rows[1]["PA"] == "999"


def test_dprp_refuses_a_value_out_of_range_naming_the_row(trial, tmp_path):
    from peerlift.research.models import Enrolment

    with dbmod.transaction() as s:
        e = s.query(Enrolment).filter_by(user_id=trial.alice.id).one()
        e.screening_answers = {**e.screening_answers, "height_in": 120}
    base = tmp_path / "exports"
    base.mkdir()
    result = runner.invoke(app, ["export", "--study", "trial", "--format", "dprp", "--out", str(base / "d"),
                                 "--arm", "a"])
    assert result.exit_code == 1
    assert "DPRP row 1" in result.output and "HEIGHT" in result.output
    assert list(base.iterdir()) == []


def _dprp_with(trial, tmp_path, **answers):
    """Alice's screening answers changed (None removes one), then the DPRP export into an empty folder."""
    from peerlift.research.models import Enrolment

    with dbmod.transaction() as s:
        e = s.query(Enrolment).filter_by(user_id=trial.alice.id).one()
        merged = {**e.screening_answers, **answers}
        e.screening_answers = {k: v for k, v in merged.items() if v is not None}
    base = tmp_path / "exports"
    base.mkdir()
    result = runner.invoke(app, ["export", "--study", "trial", "--format", "dprp", "--out", str(base / "d"),
                                 "--arm", "a"])
    return result, base


@pytest.mark.parametrize("answers, field, why", [
    # GDM is 1 or 2 only: the dictionary has no "not reported" code for the prediabetes determinations.
    ({"gestational_diabetes": 9}, "GDM", "not one of the dictionary's codes 1, 2"),
    # HEIGHT and STATE have no "not reported" code: a missing answer is refused, not written as 999 or blank.
    ({"height_in": None}, "HEIGHT", "'height_in' is needed"),
    ({"height_in": "tall"}, "HEIGHT", "30-98 inches"),
    ({"state": None}, "STATE", "'state' is needed"),
    ({"state": "XX"}, "STATE", "not a US state"),
])
def test_dprp_refuses_a_code_outside_the_dictionary_naming_the_row(trial, tmp_path, answers, field, why):
    result, base = _dprp_with(trial, tmp_path, **answers)
    assert result.exit_code == 1
    assert "DPRP row 1" in result.output and f"{field} " in result.output and why in result.output
    assert list(base.iterdir()) == []


def test_dprp_codes_missing_prediabetes_routes_as_no_and_takes_military_post_states(trial, tmp_path):
    result, base = _dprp_with(trial, tmp_path, state="ae", glucose_test=None)
    assert result.exit_code == 0, result.output
    first = _csv(base / "d" / "dprp.csv")[0]
    assert (first["STATE"], first["GLUCTEST"], first["GDM"], first["RISKTEST"]) == ("AE", "2", "2", "2")


def test_dprp_refuses_an_orgcode_that_is_not_letters_and_digits(trial, tmp_path):
    with dbmod.transaction() as s:
        s.get(StudyDesign, trial.study.id).dprp_orgcode = "ORG-123"
    result, base = _dprp_with(trial, tmp_path)
    assert result.exit_code == 1
    assert "DPRP row 1" in result.output and "ORGCODE 'ORG-123'" in result.output
    assert list(base.iterdir()) == []


def test_dprp_delivery_modes_are_the_dictionarys_three():
    from peerlift.errors import InvalidInput
    from peerlift.research.dprp import check

    row = {"ORGCODE": "ORG123", "PARTICIP": "P0123456789abcdef", "ENROLLMOT": 9, "ENROLLHC": 9,
           "PAYERSOURCE": 9, "STATE": "NY", "GLUCTEST": 1, "GDM": 2, "RISKTEST": 2, "AGE": 54, "ETHNIC": 2,
           "AIAN": 2, "ASIAN": 2, "BLACK": 2, "NHOPI": 2, "WHITE": 1, "SEX": 2, "HEIGHT": 65, "EDU": 4,
           "DMODE": 3, "SESSID": 4, "SESSTYPE": "C", "DATE": "01/22/2026", "WEIGHT": 176, "PA": 999}
    check(row, 7)
    with pytest.raises(InvalidInput) as refused:
        check({**row, "DMODE": 4}, 7)
    assert "DPRP row 7" in str(refused.value) and "DMODE 4" in str(refused.value)
    assert refused.value.field == "DMODE"


def test_dprp_needs_an_orgcode(trial, tmp_path):
    with dbmod.transaction() as s:
        s.get(StudyDesign, trial.study.id).dprp_orgcode = ""
    result = runner.invoke(app, ["export", "--study", "trial", "--format", "dprp", "--out", str(tmp_path / "d"),
                                 "--arm", "a"])
    assert result.exit_code == 1 and "dprp_orgcode" in result.output


@pytest.mark.parametrize("args, message", [
    (["--study", "nope", "--format", "csv"], "No study 'nope'"),
    (["--study", "trial", "--format", "xls"], "Unknown format 'xls'"),
    (["--study", "trial", "--format", "dprp", "--arm", "zzz"], "no arm 'zzz'"),
])
def test_bad_input_is_refused_without_files(world, tmp_path, args, message):
    with dbmod.transaction() as s:
        design(s, world.study, dprp_orgcode="ORG1")
    base = tmp_path / "exports"
    base.mkdir()
    result = runner.invoke(app, ["export", *args, "--out", str(base / "out")])
    assert result.exit_code == 1
    assert message in result.output
    assert list(base.iterdir()) == []
    assert count_rows(StudyKey) == 0


def test_a_folder_that_is_not_empty_needs_force(trial, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["export", "--study", "trial", "--format", "csv", "--out", str(out)])
    assert result.exit_code == 1 and "not empty" in result.output and "--force" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    result = runner.invoke(app, ["export", "--study", "trial", "--format", "csv", "--out", str(out), "--force"])
    assert result.exit_code == 0
    assert "keep.txt" not in {p.name for p in out.iterdir()} and (out / "manifest.json").exists()


def test_a_failure_midway_leaves_no_partial_files(trial, tmp_path, monkeypatch):
    from peerlift.research import export as export_mod

    def broken(cx):
        yield {}
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(export_mod.BUILDERS, "comments", broken)
    base = tmp_path / "exports"
    base.mkdir()
    result = runner.invoke(app, ["export", "--study", "trial", "--format", "csv", "--out", str(base / "out")])
    assert result.exit_code != 0
    assert list(base.iterdir()) == []
