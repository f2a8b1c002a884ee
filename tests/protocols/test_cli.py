"""`peerlift protocol check | preview | schema | fhir`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from peerlift.cli import app

GOOD = """\
id: walk
version: "1.0.0"
title: Walking
description: A test.
duration_days: 10
items:
  - id: morning
    days: 1-10
    at: "09:00"
    channel: notification
    text: Day {day}, {first_name}!
"""
BAD = GOOD.replace('at: "09:00"', 'at: "25:00"').replace("channel:", "chanel:")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_check_ok_and_errors_with_file_and_line(tmp_path):
    runner = CliRunner()
    good, bad = _write(tmp_path, "good.yaml", GOOD), _write(tmp_path, "bad.yaml", BAD)
    ok = runner.invoke(app, ["protocol", "check", str(good)])
    assert ok.exit_code == 0 and "ok (walk 1.0.0" in ok.output
    result = runner.invoke(app, ["protocol", "check", str(good), str(bad)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith(str(bad))]
    assert any(line.startswith(f"{bad}:9: ") and "25:00" in line for line in lines)
    assert any(line.startswith(f"{bad}:10: ") and "did you mean 'channel'" in line for line in lines)
    assert [int(line.split(":")[1]) for line in lines] == sorted(int(line.split(":")[1]) for line in lines)


def test_check_missing_file(tmp_path):
    result = CliRunner().invoke(app, ["protocol", "check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1 and "nope.yaml:1: cannot read the file" in result.output


def test_preview_text_and_json(tmp_path):
    path = _write(tmp_path, "good.yaml", GOOD)
    runner = CliRunner()
    text = runner.invoke(app, ["protocol", "preview", str(path), "--start", "2026-03-28", "--tz", "Europe/Berlin",
                               "--days", "2", "--name", "Ada Lovelace"])
    assert text.exit_code == 0
    assert text.output.splitlines() == ["2026-03-28 09:00 notification morning Day 1, Ada!",
                                        "2026-03-29 09:00 notification morning Day 2, Ada!"]
    js = runner.invoke(app, ["protocol", "preview", str(path), "--start", "2026-03-28", "--tz", "Europe/Berlin",
                             "--days", "3", "--format", "json"])
    rows = json.loads(js.output)
    assert [r["date"] for r in rows] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert set(rows[0]) == {"date", "time", "channel", "item", "kind", "text", "day", "audience", "condition"}
    assert [r["day"] for r in rows] == [1, 2, 3] and rows[0]["audience"] == "each_member"


def test_preview_bad_options(tmp_path):
    path = _write(tmp_path, "good.yaml", GOOD)
    runner = CliRunner()
    bad_date = runner.invoke(app, ["protocol", "preview", str(path), "--start", "28/03/2026", "--tz", "UTC"])
    assert bad_date.exit_code == 2 and "--start" in bad_date.output
    bad_zone = runner.invoke(app, ["protocol", "preview", str(path), "--start", "2026-03-28", "--tz", "Mars/Base"])
    assert bad_zone.exit_code == 2 and "--tz" in bad_zone.output
    invalid = runner.invoke(app, ["protocol", "preview", str(_write(tmp_path, "bad.yaml", BAD)), "--start",
                                  "2026-03-28", "--tz", "UTC"])
    assert invalid.exit_code == 1 and "bad.yaml:9:" in invalid.output


def test_schema_is_json_schema():
    result = CliRunner().invoke(app, ["protocol", "schema"])
    schema = json.loads(result.output)
    assert schema["title"] == "peerlift protocol" and "items" in schema["properties"]
    assert "{first_name}" in schema["description"]
    assert schema["additionalProperties"] is False


def test_fhir_export_validates_with_r4b_models(tmp_path):
    from fhir.resources.R4B.activitydefinition import ActivityDefinition
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.plandefinition import PlanDefinition

    result = CliRunner().invoke(app, ["protocol", "fhir", str(_write(tmp_path, "good.yaml", GOOD))])
    assert result.exit_code == 0
    bundle = Bundle.model_validate_json(result.output)
    plan = PlanDefinition.model_validate(bundle.entry[0].resource.model_dump())
    assert plan.version == "1.0.0" and [a.id for a in plan.action] == ["morning"]
    activities = [ActivityDefinition.model_validate(e.resource.model_dump()) for e in bundle.entry[1:]]
    assert [a.url for a in activities] == [plan.action[0].definitionCanonical]
    assert activities[0].timingTiming.repeat.timeOfDay[0].isoformat() == "09:00:00"


def test_shipped_protocols_check_clean():
    shipped = sorted((Path(__file__).parents[2] / "protocols").glob("*.yaml"))
    names = {p.name for p in shipped}
    assert {"smoking-cessation-tweet2quit.yaml", "diabetes-prevention-cdc-dpp.yaml",
            "peer-support-low-mood.yaml"} <= names
    result = CliRunner().invoke(app, ["protocol", "check", *map(str, shipped)])
    assert result.exit_code == 0, result.output


def test_tweet2quit_has_two_prompts_a_day_and_daily_feedback():
    import datetime as dt

    from peerlift.protocols.loader import load
    from peerlift.protocols.schedule import occurrences

    protocol = load(Path(__file__).parents[2] / "protocols" / "smoking-cessation-tweet2quit.yaml")
    assert protocol.duration_days == 100 and protocol.quit_day is not None
    by_day: dict[int, list] = {}
    for occ in occurrences(protocol, dt.date(2026, 3, 23), "Europe/Berlin"):
        by_day.setdefault(occ.day, []).append(occ)
    for day in range(1, 101):
        posts = [o.local_time for o in by_day[day] if o.item.channel == "circle_post" and o.item.kind == "text"]
        assert posts.count("09:00") == 1 and posts.count("17:00") == 1, (day, posts)
        assert sum(1 for o in by_day[day] if o.item.kind == "engagement_feedback") == 1
