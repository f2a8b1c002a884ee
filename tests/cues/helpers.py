"""Helpers of the cues tests: rule files in force, events the tracking domain would publish, and
the scheduler run as if the clock said a given time."""

from __future__ import annotations

import datetime as dt

from peerlift import db as dbmod
from peerlift.events import Audience, publish
from peerlift.settings import get_settings
from tests.conftest import run_due

# A Tuesday at noon in London (UTC+0): outside everyone's default quiet hours (22:00-07:00).
NOON = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def use_rules(monkeypatch, tmp_path, text: str, *, defaults: bool = False, per_day: int | None = None) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    monkeypatch.setenv("PEERLIFT_CUE_FILES", str(path))
    monkeypatch.setenv("PEERLIFT_CUE_DEFAULTS", "true" if defaults else "false")
    if per_day is not None:
        monkeypatch.setenv("PEERLIFT_CUES_PER_DAY", str(per_day))
    get_settings.cache_clear()


def rules(*cues: str) -> str:
    return 'id: test-rules\nversion: "1.2.0"\ncues:\n' + "".join(cues)


def run_at(moment: dt.datetime, times: int = 20) -> int:
    with dbmod.clock_at(moment):
        return run_due(times=times)


def log_entry(person, measure: str, value: float, *, local_date: str = "2026-03-10", entry_id: int = 1) -> None:
    """What the tracking domain publishes when a person logs an entry."""
    with dbmod.transaction() as s:
        publish(s, "tracking.logged", Audience(user_id=person.id), actor_id=person.id, object_type="tracking_entry",
                object_id=entry_id, data={"measure": measure, "value": value, "unit": "", "local_date": local_date,
                                          "entry_id": entry_id})


def score(person, instrument: str, total: int, band: str, band_rank: int, previous_band: str | None,
          previous_rank: int | None, response_id: int = 1) -> None:
    """What the tracking domain publishes when a questionnaire is scored."""
    with dbmod.transaction() as s:
        publish(s, "questionnaire.scored", Audience(user_id=person.id), actor_id=person.id,
                object_type="questionnaire_response", object_id=response_id,
                data={"instrument": instrument, "version": "1", "total": total, "band": band,
                      "previous_band": previous_band, "band_rank": band_rank, "previous_band_rank": previous_rank,
                      "alerts": [], "response_id": response_id})


def make_post(person, circle, body: str = "Hello circle") -> int:
    from peerlift.community.service import create_post
    from peerlift.policy import circle_access

    with dbmod.transaction() as s:
        return create_post(s, circle_access(s, person, circle.id), body).id
