"""Cue rule files are checked like protocols: every problem at once as FILE:LINE: message, with a
"did you mean" for unknown keys, fields, names and triggers; `peerlift cues check | list`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerlift.cli import app
from peerlift.cues.engine import DEFAULT_FILE, Context, holds
from peerlift.cues.loader import RulesInvalid, load, parse
from peerlift.protocols.loader import ProtocolInvalid
from peerlift.protocols.loader import parse as parse_protocol

GOOD = """\
id: walk-cues
version: "1.0.0"
cues:
  - id: craving
    trigger: {event: tracking.logged}
    condition: "event.measure == 'cravings' and event.value >= 8"
    action: {inbox: "{display_name} logged cravings at {event.value}"}
    randomise: 0.5
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(RulesInvalid) as caught:
        parse(text, "cues.yaml")
    return caught.value.lines()


def test_a_good_file_and_the_shipped_defaults():
    ruleset = parse(GOOD, "cues.yaml")
    [rule] = ruleset.rules
    assert (ruleset.key, ruleset.version, rule.id, rule.rule.randomise) == ("walk-cues", "1.0.0", "craving", 0.5)
    assert rule.guards == {"measure": "cravings"} and rule.event_kind == "tracking.logged"
    assert holds(rule, Context({}, event={"measure": "cravings", "value": 9}))
    assert not holds(rule, Context({}, event={"measure": "cravings", "value": 7}))
    assert not holds(rule, Context({}, event={"measure": "cravings", "value": None}))  # cannot compare: false
    defaults = load(DEFAULT_FILE)
    assert [r.id for r in defaults.rules] == ["silent-member", "high-craving", "score-worsened",
                                              "first-post-unanswered"]


@pytest.mark.parametrize(("replace", "with_", "expected"), [
    ("event.value >= 8", "event.value >= (", "cues.yaml:6: cues.0.condition: the condition does not parse"),
    ("event.value >= 8", "event.valeu >= 8",
     "cues.yaml:6: cues.0.condition: event.valeu: unknown event field 'valeu'; did you mean 'value'?"),
    ("event.value >= 8", "persn.posts_7d > 1",
     "cues.yaml:6: cues.0.condition: persn.posts_7d: unknown name 'persn'; did you mean 'person'?"),
    ("event.value >= 8", "person.post_7d > 1",
     "cues.yaml:6: cues.0.condition: person.post_7d: unknown person field 'post_7d'; did you mean 'posts_7d'?"),
    ("event.value >= 8", "post.comments == 0",
     "cues.yaml:6: cues.0.condition: post.comments: post.* is known only for post.created and comment.created"),
    ("event.value >= 8", "__import__('os').system('true')",
     "cues.yaml:6: cues.0.condition: the condition may not use Call"),
    ("{event: tracking.logged}", "{event: tracking.loged}",
     "cues.yaml:5: cues.0.trigger.event: unknown trigger event 'tracking.loged'; did you mean 'tracking.logged'?"),
    ("{event: tracking.logged}", "{evnt: tracking.logged}", "cues.yaml:5: unknown key 'evnt' in cues.0.trigger; "
                                                            "did you mean 'event'?"),
    ("{inbox:", "{inbx:", "cues.yaml:7: unknown key 'inbx' in cues.0.action; did you mean 'inbox'?"),
    ("{inbox:", "{email:", "cues.yaml:7: unknown key 'email' in cues.0.action; known keys: dm, notify, inbox, post"),
    ("randomise: 0.5", "randomise: 1.5", "cues.yaml:8: cues.0.randomise: randomise is a probability between 0 "
                                         "and 1 (got 1.5)"),
    ("randomise: 0.5", "randomise: -0.1", "cues.yaml:8: cues.0.randomise: randomise is a probability"),
    ("randomise: 0.5", "randomise: often", "cues.yaml:8: cues.0.randomise: randomise is a probability"),
    ("{display_name}", "{display_nam}", "cues.yaml:7: cues.0.action.inbox: {display_nam}: unknown placeholder "
                                        "'display_nam'; did you mean 'display_name'?"),
    ("randomise: 0.5", "cooldown: soon", "cues.yaml:8: cues.0.cooldown: 'soon' is not a duration"),
])
def test_each_problem_names_its_line(replace, with_, expected):
    lines = _problems(GOOD.replace(replace, with_))
    assert any(line.startswith(expected) for line in lines), lines


def test_every_problem_at_once_in_line_order():
    text = GOOD.replace("tracking.logged", "tracking.loged") + """\
  - id: craving
    trigger: {at: "25:00"}
    action: {dm: "x", notify: "y"}
  - id: later
    trigger: {event: post.created, after: soon}
    action:
      follow_up: {after: 1 day, cue: chek}
"""
    lines = _problems(text)
    numbers = [int(line.split(":")[1]) for line in lines]
    assert numbers == sorted(numbers) and len(lines) >= 6, lines
    joined = "\n".join(lines)
    assert "cues.yaml:9: cues.1.id: duplicate rule id 'craving' (first on line 4)" in joined
    assert "cues.yaml:10: cues.1.trigger.at: '25:00' is not a time of day" in joined
    assert "cues.1.action: Value error" not in joined and "an action is exactly one of" in joined
    assert "cues.2.trigger.after: 'soon' is not a duration" in joined
    assert "cues.yaml:15: cues.2.action.follow_up.cue: no rule 'chek' in this file" in joined


def test_time_triggers_know_only_the_time_fields():
    text = GOOD.replace("{event: tracking.logged}", '{missed_checkin: weight, by: "20:00"}')
    assert any("event.measure: unknown event field 'measure'" in line for line in _problems(text))
    assert _problems(GOOD.replace("{event: tracking.logged}", "{missed_checkin: weight}"))[0].endswith(
        'missed_checkin needs by: "HH:MM"')


def test_cues_inside_a_protocol_file_are_checked_with_its_lines():
    protocol = """\
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
cues:
  - id: cheer
    trigger: {event: post.created}
    condition: "person.posts_7d >= 3 and post.comment == 0"
    action: {notfy: "Great streak, {first_name}!"}
"""
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(protocol, "walk.yaml")
    assert caught.value.lines() == [
        "walk.yaml:15: cues.0.condition: post.comment: unknown post field 'comment'; did you mean 'comments'?",
        "walk.yaml:16: unknown key 'notfy' in cues.0.action; did you mean 'notify'?",
    ]
    fixed = parse_protocol(protocol.replace("post.comment ", "post.comments ").replace("notfy", "notify"), "walk.yaml")
    assert fixed.cues[0]["id"] == "cheer"


def test_cli_check_and_list(tmp_path: Path, monkeypatch):
    runner = CliRunner()
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("event.value", "event.valeu"))
    ok = runner.invoke(app, ["cues", "check", str(good)])
    assert ok.exit_code == 0 and "ok (walk-cues 1.0.0, 1 cues)" in ok.output
    failed = runner.invoke(app, ["cues", "check", str(good), str(bad)])
    assert failed.exit_code == 1
    assert f"{bad}:6: cues.0.condition: event.valeu: unknown event field 'valeu'" in failed.output
    missing = runner.invoke(app, ["cues", "check", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1 and "nope.yaml:1: cannot read the file" in missing.output
    monkeypatch.setenv("PEERLIFT_CUE_FILES", str(good))
    from peerlift.settings import get_settings

    get_settings.cache_clear()
    listed = runner.invoke(app, ["cues", "list", "--no-database"])
    get_settings.cache_clear()
    assert listed.exit_code == 0, listed.output
    assert "facilitator-inbox 1.0.0 (every circle)" in listed.output and "walk-cues 1.0.0 (every circle)" in listed.output
    assert "  craving: when event: tracking.logged if event.measure == 'cravings' and event.value >= 8 -> inbox; " \
           "cool-down 1 day; randomise 0.5" in listed.output
    assert "  first-post-unanswered: when event: post.created, after: 2 hours" in listed.output


def test_serve_and_worker_refuse_a_bad_cue_file(tmp_path: Path, monkeypatch):
    from peerlift.settings import get_settings

    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("randomise: 0.5", "randomise: 2"))
    monkeypatch.setenv("PEERLIFT_CUE_FILES", str(bad))
    monkeypatch.setenv("PEERLIFT_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    get_settings.cache_clear()
    try:
        for command in (["serve"], ["worker", "--once"]):
            result = CliRunner().invoke(app, command)
            assert result.exit_code == 2, result.output
            assert "PEERLIFT_CUE_FILES names a file with problems" in result.output
            assert f"{bad}:8: cues.0.randomise: randomise is a probability between 0 and 1" in result.output
    finally:
        get_settings.cache_clear()
