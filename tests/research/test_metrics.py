"""Engagement metrics and cost, computed by DuckDB over the Parquet snapshot."""

from __future__ import annotations

import pytest

from peerlift import db as dbmod
from peerlift.research import cost
from peerlift.research.analytics_models import CostAdjustment
from peerlift.research.metrics import study_metrics
from peerlift.research.models import EnrolmentStatus, Study
from tests.research.analytics_factory import at, comment, design, enrol, log, post, questionnaire, react


@pytest.fixture
def story(world):
    """Alice and Bob in arm A, Carol in arm B, all randomised on day 0. Alice posts on day 1 and the
    coach answers after 30 minutes; Carol posts first on day 8; Bob never posts. Alice logs five days
    and answers one of two questionnaires."""
    w = world
    with dbmod.transaction() as s:
        design(s, w.study, hourly_rates={"facilitator": 60, "clinician": 90},
               fixed_costs=[{"arm": "a", "item": "licences", "amount": 100},
                            {"arm": None, "item": "training", "amount": 300}])
        for person, arm, circle in ((w.alice, w.arm_a, w.circle), (w.bob, w.arm_a, w.circle),
                                    (w.carol, w.arm_b, w.other_circle)):
            enrol(s, w.study, person, arm, circle)
        first = post(s, w.alice, w.circle, "Day one, feeling good", at(1, 1))
        comment(s, w.coach, w.circle, first, "Great start, Alice", at(1, 1.5))
        comment(s, w.bob, w.circle, first, "Same here", at(1, 2))
        react(s, w.bob, w.circle, first, at(1, 3))
        post(s, w.alice, w.circle, "Week two", at(9, 1))
        post(s, w.carol, w.other_circle, "Hello from B", at(8, 1))
        for day in (1, 2, 3, 4, 5):
            log(s, w.alice, "steps", 5000 + day, day)
        questionnaire(s, w.alice, w.coach, 2, answers=[0, 1, 0, 1, 0, 0, 1, 0, 0])
        questionnaire(s, w.alice, w.coach, 9)
    return w


def test_participant_metrics(story):
    w = story
    with dbmod.transaction(write=False) as s:
        m = study_metrics(s, s.get(Study, w.study.id))
    alice, bob, carol = m.participant(w.alice.id), m.participant(w.bob.id), m.participant(w.carol.id)
    assert (alice["posts"], alice["comments"], alice["reactions"]) == (2, 0, 0)
    assert (bob["posts"], bob["comments"], bob["reactions"]) == (0, 1, 1)
    assert alice["days_to_first_post"] == 1 and carol["days_to_first_post"] == 8
    assert bob["days_to_first_post"] is None
    assert alice["response_minutes"] == pytest.approx(30.0)
    assert alice["posts_answered"] == 1 and carol["posts_answered"] == 0
    assert alice["tracking_days"] == 5
    assert alice["adherence"] == pytest.approx(5 / alice["days_enrolled"])
    assert alice["days_enrolled"] in (21, 22)
    assert (alice["questionnaires_requested"], alice["questionnaires_answered"]) == (2, 1)
    assert alice["completion"] == pytest.approx(0.5)
    assert carol["completion"] is None
    # Alice is active on days 1, 2 (questionnaire), 3, 4, 5 and 9; last active in week 1.
    assert alice["active_days"] == 6 and alice["last_active_week"] == 1
    assert bob["active_days"] == 1 and bob["last_active_week"] == 0


def test_groups_days_and_retention(story):
    w = story
    with dbmod.transaction(write=False) as s:
        m = study_metrics(s, s.get(Study, w.study.id))
    a, b = m.arm(w.arm_a.id), m.arm(w.arm_b.id)
    assert (a["participants"], a["posts"], a["comments"]) == (2, 2, 1)
    assert (b["participants"], b["posts"]) == (1, 1)
    assert a["ever_posted"] == 1 and a["median_response_minutes"] == pytest.approx(30.0)
    assert [c["circle_id"] for c in m.circles] == [w.circle.id, w.other_circle.id]
    day_one = [d for d in m.days if d["day"] == at(1, 1).date() and d["arm_id"] == w.arm_a.id][0]
    assert (day_one["posts"], day_one["comments"], day_one["reactions"], day_one["active_participants"]) == (1, 1, 1, 2)
    # Week 0: both active; week 1: only Alice is still active; week 2: nobody.
    assert m.retention[w.arm_a.id][:3] == [1.0, 0.5, 0.0]
    assert m.retention[w.arm_b.id][:3] == [1.0, 1.0, 0.0]
    assert set(m.fidelity) == {w.arm_a.id, w.arm_b.id}


def test_only_randomised_people_count_and_withdrawal_stops_the_clock(world):
    w = world
    with dbmod.transaction() as s:
        enrol(s, w.study, w.alice, w.arm_a, w.circle, status=EnrolmentStatus.withdrawn)
        enrol(s, w.study, w.bob, w.arm_a, w.circle, status=EnrolmentStatus.ineligible)
        enrol(s, w.study, w.carol, w.arm_b, w.other_circle)
        post(s, w.alice, w.circle, "before leaving", at(2))
        post(s, w.alice, w.circle, "after leaving", at(12))
    with dbmod.transaction(write=False) as s:
        m = study_metrics(s, s.get(Study, w.study.id))
    assert {p["user_id"] for p in m.participants} == {w.alice.id, w.carol.id}
    alice = m.participant(w.alice.id)
    assert alice["posts"] == 1 and alice["days_enrolled"] == 11


def test_circle_members_count_when_nobody_is_randomised(world):
    w = world
    with dbmod.transaction(write=False) as s:
        m = study_metrics(s, s.get(Study, w.study.id))
    assert {p["user_id"] for p in m.participants} == {w.alice.id, w.bob.id, w.pat.id, w.carol.id}


def test_cost_per_participant(story):
    w = story
    with dbmod.transaction() as s:
        # The coach also answers in arm B, twice within 20 minutes (one session), 3 hours after arm A's.
        carol_post = post(s, w.carol, w.other_circle, "Question", at(3, 1))
        comment(s, w.coach, w.other_circle, carol_post, "Answer", at(3, 1.25))
        comment(s, w.coach, w.other_circle, carol_post, "And more", at(3, 1.5))
    with dbmod.transaction(write=False) as s:
        study = s.get(Study, w.study.id)
        m = study_metrics(s, study)
        table, currency = cost.costs(s, study, m)
    by_arm = {row.arm_id: row for row in table}
    # Arm A: three sessions of one event each (the answer on day 1, questionnaires asked on days 2
    # and 9): 3 x 5 minutes. Arm B: 15 minutes between two events + 5.
    assert by_arm[w.arm_a.id].staff_minutes == pytest.approx(15)
    assert by_arm[w.arm_b.id].staff_minutes == pytest.approx(20)
    assert by_arm[w.arm_a.id].staff_cost == pytest.approx(15)  # 60 an hour
    # Training (300) shared 2:1 by participants; licences (100) to arm A only.
    assert by_arm[w.arm_a.id].fixed_cost == pytest.approx(300)
    assert by_arm[w.arm_b.id].fixed_cost == pytest.approx(100)
    assert by_arm[w.arm_a.id].per_participant == pytest.approx(315 / 2)
    assert by_arm[w.arm_b.id].per_participant == pytest.approx(120)
    assert currency == "GBP"


def test_adjustments_add_time(story):
    w = story
    with dbmod.transaction() as s:
        study = s.get(Study, w.study.id)
        cost.add_adjustment(s, w.researcher, study, user_id=w.coach.id, minutes=55, arm_slug="a",
                            reason="supervision call")
        cost.add_adjustment(s, w.researcher, study, user_id=w.clinician.id, minutes=60, reason="training")
    with dbmod.transaction(write=False) as s:
        study = s.get(Study, w.study.id)
        table, _ = cost.costs(s, study, study_metrics(s, study, with_fidelity=False))
    by_arm = {row.arm_id: row for row in table}
    assert by_arm[w.arm_a.id].staff_minutes == pytest.approx(15 + 55 + 30)
    # The clinician has no measured time: the hour is shared evenly, priced at 90 an hour.
    assert by_arm[w.arm_b.id].staff_cost == pytest.approx(30 / 60 * 90)


@pytest.mark.parametrize("values, field", [
    ({"minutes": "ten", "reason": "x"}, "minutes"),
    ({"minutes": 10**7, "reason": "x"}, "minutes"),
    ({"minutes": 10, "reason": "  "}, "reason"),
    ({"minutes": 10, "reason": "x", "arm_slug": "zzz"}, "arm"),
])
def test_bad_adjustments_are_refused(world, values, field):
    from peerlift.errors import InvalidInput
    from tests.conftest import count_rows

    w = world
    with pytest.raises(InvalidInput) as caught:
        with dbmod.transaction() as s:
            cost.add_adjustment(s, w.researcher, s.get(Study, w.study.id), user_id=w.coach.id, **values)
    assert caught.value.field == field and caught.value.message
    assert count_rows(CostAdjustment) == 0


def test_events_read_through_arrow_match_the_driver_path(story, tmp_path, monkeypatch):
    """On SQLite the events are read as Arrow batches (ADBC, in a child process); the Python driver
    path, used when that cannot run, writes the very same file. On PostgreSQL the database filters."""
    import sys

    import pyarrow.parquet as pq

    from peerlift.research import metrics as m

    # The app's own process never loads ADBC's copy of SQLite: two copies of the library in one
    # process drop each other's file locks and can corrupt the database.
    for name in [n for n in sys.modules if n.startswith("adbc_driver_sqlite")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "adbc_driver_sqlite", None)
    w = story
    actors = [w.alice.id, w.bob.id, w.carol.id, w.coach.id]
    calls = []
    real = m.read_in_child
    monkeypatch.setattr(m, "read_in_child", lambda *a: calls.append(real(*a)) or calls[-1])
    with dbmod.transaction(write=False) as s:
        assert m.write_events(s, actors, tmp_path / "a.parquet") > 0
        monkeypatch.setattr(m, "read_in_child", lambda *a: None)
        m.write_events(s, actors, tmp_path / "b.parquet")
        sqlite = s.get_bind().dialect.name == "sqlite"
    first, second = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert first.sort_by("id").equals(second.sort_by("id"))
    assert set(first.column("actor_id").to_pylist()) <= set(actors)
    if sqlite:
        assert calls and calls[0] == first.num_rows  # the Arrow path ran


def test_pages_share_one_computation_until_something_is_written(story, monkeypatch):
    """The dashboard and its chart images ask at once: one computation serves them, and the next
    write (a new event) or the passing of CACHE_SECONDS makes the figures fresh again."""
    import threading

    from peerlift.research import metrics as m

    w = story
    runs = []
    real = m.study_metrics
    monkeypatch.setattr(m, "study_metrics", lambda *a, **k: runs.append(1) or real(*a, **k))
    results = []

    def ask(with_fidelity: bool) -> None:
        with dbmod.transaction(write=False) as s:
            results.append(m.cached_study_metrics(s, s.get(Study, w.study.id), with_fidelity=with_fidelity))

    threads = [threading.Thread(target=ask, args=(i == 0,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1 and all(r is results[0] for r in results)
    assert set(results[0].fidelity) == {w.arm_a.id, w.arm_b.id}  # added for the page that wanted it

    with dbmod.transaction() as s:
        post(s, w.bob, w.circle, "At last, my first post", at(10, 1))
    ask(False)
    assert len(runs) == 2 and results[-1].participant(w.bob.id)["posts"] == 1

    monkeypatch.setattr(m, "CACHE_SECONDS", -1.0)
    ask(False)
    assert len(runs) == 3


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_reading_events_while_the_app_writes_keeps_the_database_whole(story, tmp_path):
    """Snapshots taken while people post leave a SQLite file that passes its integrity check."""
    import threading

    from sqlalchemy import text

    from peerlift.research import metrics as m

    w = story
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            with dbmod.transaction() as s:
                post(s, w.alice, w.circle, f"Note {n}", at(11, 1))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for i in range(6):
            with dbmod.transaction(write=False) as s:
                m.write_events(s, [w.alice.id, w.bob.id], tmp_path / f"{i}.parquet")
    finally:
        stop.set()
        writer.join()
    with dbmod.transaction(write=False) as s:
        assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"


def test_days_are_counted_down_never_rounded_up(world):
    """A post 3 days and 20 hours after randomisation is on day 3, and the days enrolled are the whole
    days so far plus the first, whatever the time of day the figures are asked for."""
    import datetime as dt

    from peerlift.db import utcnow

    w = world
    with dbmod.transaction() as s:
        enrol(s, w.study, w.alice, w.arm_a, w.circle)
        post(s, w.alice, w.circle, "Late evening walk", at(3, 20))
    with dbmod.transaction(write=False) as s:
        m = study_metrics(s, s.get(Study, w.study.id))
    alice = m.participant(w.alice.id)
    assert alice["days_to_first_post"] == 3
    assert alice["days_enrolled"] == (m.now - at(0)) // dt.timedelta(days=1) + 1
    assert m.now <= utcnow()
