"""`peerlift instruments list | score | check | upload`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from peerlift import db as dbmod
from peerlift.cli import app
from peerlift.tracking.models import InstrumentDefinition
from tests.conftest import count_rows
from tests.tracking.test_questionnaires import CUSTOM


def test_list_shows_key_name_items_range_and_bands():
    result = CliRunner().invoke(app, ["instruments", "list"])
    assert result.exit_code == 0, result.output
    lines = {line.split("\t")[0]: line for line in result.output.splitlines()}
    assert set(lines) == {"phq9", "phq8", "gad7", "who5", "auditc", "ftnd"}
    assert "9 items" in lines["phq9"] and "score 0-27" in lines["phq9"]
    assert "moderately_severe 15-19" in lines["phq9"] and "severe 20-27" in lines["phq9"]
    assert "female: negative 0-2, positive 3-12" in lines["auditc"]


@pytest.mark.parametrize("args,expected", [
    (["phq9", "1", "1", "1", "1", "1", "1", "1", "1", "1"],
     {"instrument": "phq9", "total": 9, "band": "mild", "alerts": ["item9"]}),
    (["who5", "5", "5", "5", "5", "4"],
     {"instrument": "who5", "total": 24, "band": "good", "alerts": [], "percentage": 96}),
    (["auditc", "1", "1", "1", "--sex", "female"], {"instrument": "auditc", "total": 3, "band": "positive",
                                                    "alerts": []}),
    (["auditc", "1", "1", "1", "--sex", "male"], {"instrument": "auditc", "total": 3, "band": "negative",
                                                  "alerts": []}),
])
def test_score_prints_one_json_object(args, expected):
    result = CliRunner().invoke(app, ["instruments", "score", *args])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == expected


@pytest.mark.parametrize("args,words", [
    (["phq9", "1", "1"], "9 scored questions; 2 answers given"),
    (["gad7", "0", "0", "0", "0", "0", "0", "4"], "must be one of 0, 1, 2, 3"),
    (["gad7", "0", "0", "0", "0", "0", "0", "1.5"], "'1.5' is not a whole number"),
    (["gad7", "0", "0", "0", "0", "0", "0", "x"], "'x' is not a whole number"),
    (["bdi2", "1"], "No instrument 'bdi2'"),
    (["auditc", "1", "1", "1"], "needs sex"),
    (["auditc", "1", "1", "1", "--sex", "other"], "sex is male or female"),
])
def test_score_errors_go_to_stderr_with_a_non_zero_exit(args, words):
    result = CliRunner().invoke(app, ["instruments", "score", *args])
    assert result.exit_code != 0
    assert result.stdout == ""
    assert words in result.stderr


def test_check_reports_file_and_line(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(CUSTOM)
    bad.write_text(CUSTOM.replace("at_least: 2", "at_least: 7").replace("max: 6", "max: 9"))
    result = CliRunner().invoke(app, ["instruments", "check", str(good)])
    assert result.exit_code == 0 and "ok (stress3 1.0, 4 items, score 0-6)" in result.output
    result = CliRunner().invoke(app, ["instruments", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:18: bands.1: band 'high' reaches totals 7-9 that cannot occur" in result.output
    assert f"{bad}:20: alerts.0.at_least: item 'overwhelmed' never scores 7" in result.output


def test_shipped_instrument_files_are_valid():
    from peerlift.tracking.instruments import SHIPPED_DIR

    result = CliRunner().invoke(app, ["instruments", "check", *map(str, sorted(SHIPPED_DIR.glob("*.yaml")))])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok (") == 6


def test_upload_stores_a_researchers_questionnaire(world, tmp_path):
    path = tmp_path / "stress3.yaml"
    path.write_text(CUSTOM)
    refused = CliRunner().invoke(app, ["instruments", "upload", str(path), "--as", world.alice.email])
    assert refused.exit_code == 1 and "may not upload questionnaires" in refused.stderr
    done = CliRunner().invoke(app, ["instruments", "upload", str(path), "--as", world.researcher.email])
    assert done.exit_code == 0, done.output
    assert "Uploaded stress3 version 1.0." in done.stdout
    with dbmod.transaction(write=False):
        assert count_rows(InstrumentDefinition) == 1
