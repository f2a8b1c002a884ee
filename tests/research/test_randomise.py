"""Allocation sequences: balance in every completed block and stratum, reproducible from the seed,
different for another seed, circles as cluster units, and no place of a sequence taken twice."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from peerlift import db as dbmod
from peerlift.research import randomise as seq
from peerlift.research import service
from peerlift.research.models import Allocation, Enrolment, EnrolmentStatus, Randomisation, StudyDesign
from tests.conftest import count_rows
from tests.research.helpers import consented, make_study, participant

ARMS = [11, 22, 33]


@pytest.mark.parametrize("sizes", [[3], [3, 6], [3, 6, 9]])
def test_every_completed_block_is_balanced(sizes):
    seed = seq.new_seed()
    order = seq.sequence(Randomisation.blocks, seed, "", 300, ARMS, sizes)
    bounds = seq.block_bounds(seed, "", 300, ARMS, sizes)
    assert len(bounds) >= 300 // max(sizes) - 1
    for start, end in bounds:
        counts = Counter(order[start:end])
        assert set(counts) == set(ARMS) and len(set(counts.values())) == 1, (start, end, counts)
    if len(sizes) > 1:  # block sizes are drawn at random from those given
        assert len({end - start for start, end in bounds}) > 1


def test_arm_at_matches_the_sequence():
    seed = seq.new_seed()
    order = seq.sequence(Randomisation.blocks, seed, "sex=female", 40, ARMS, [3, 6])
    assert [seq.arm_at(Randomisation.blocks, seed, "sex=female", i, ARMS, [3, 6]) for i in range(40)] == order


def test_a_fixed_seed_reproduces_the_sequence_and_another_seed_differs():
    fixed = "0" * 64
    for scheme in (Randomisation.simple, Randomisation.blocks):
        first = seq.sequence(scheme, fixed, "", 60, ARMS, [3, 6])
        assert seq.sequence(scheme, fixed, "", 60, ARMS, [3, 6]) == first
        assert seq.sequence(scheme, "1" * 64, "", 60, ARMS, [3, 6]) != first
        assert seq.sequence(scheme, fixed, "sex=male", 60, ARMS, [3, 6]) != first  # strata are independent


def test_simple_randomisation_uses_every_arm_about_equally():
    order = seq.sequence(Randomisation.simple, seq.new_seed(), "", 3000, ARMS, [])
    counts = Counter(order)
    assert set(counts) == set(ARMS) and all(800 < n < 1200 for n in counts.values()), counts


def test_seeds_are_generated_fresh_and_long():
    assert len({seq.new_seed() for _ in range(20)}) == 20
    assert len(seq.new_seed()) == 64


def test_stratified_allocation_is_balanced_within_each_stratum(session, world):
    setup = make_study(session, world, scheme="stratified", block_sizes=[2, 4], factors=[{"key": "sex"}])
    design = session.get(StudyDesign, setup.study.id)
    for n in range(24):
        sex = "female" if n % 3 else "male"
        e = consented(session, setup, participant(session), {"adult": "yes", "bmi": 30, "sex": sex})
        service.randomise(session, world.researcher, e)  # a researcher may randomise too
    session.flush()
    arm_ids = sorted(a.id for a in setup.arms)
    for stratum in ("sex=female", "sex=male"):
        rows = session.scalars(select(Allocation).where(Allocation.study_id == setup.study.id,
                                                        Allocation.stratum == stratum)
                               .order_by(Allocation.sequence_index)).all()
        assert [r.sequence_index for r in rows] == list(range(len(rows)))
        expected = seq.sequence(Randomisation.blocks, design.concealed_seed, stratum, len(rows), arm_ids, [2, 4])
        assert [r.arm_id for r in rows] == expected
        for start, end in seq.block_bounds(design.concealed_seed, stratum, len(rows), arm_ids, [2, 4]):
            counts = Counter(r.arm_id for r in rows[start:end])
            assert counts[arm_ids[0]] == counts[arm_ids[1]], (stratum, start, end)
    # each person sits in a circle of the arm they were allocated
    for e in session.scalars(select(Enrolment).where(Enrolment.study_id == setup.study.id)):
        assert e.status == EnrolmentStatus.randomised
        assert e.space_id in {c.id for c in setup.circles[e.arm_id]}


def test_cluster_randomisation_allocates_whole_circles(session, world):
    from tests.factories import create_circle

    setup = make_study(session, world, scheme="cluster", block_sizes=[2])
    circles = [create_circle(session, world.admin, f"Cluster {n}") for n in range(6)]
    allocations = service.allocate_circles(session, world.researcher, setup.study, [c.id for c in circles])
    assert [a.space_id for a in allocations] == [c.id for c in circles]
    assert all(a.enrolment_id is None and a.stratum == seq.CLUSTER_STRATUM for a in allocations)
    assert Counter(a.arm_id for a in allocations) == {setup.arms[0].id: 3, setup.arms[1].id: 3}
    for circle, allocation in zip(circles, allocations):
        assert circle.arm_id == allocation.arm_id
    # a person joins the least full allocated circle and takes its arm; no person-level allocation
    people = [participant(session) for _ in range(6)]
    for person in people:
        e = consented(session, setup, person)
        service.randomise(session, person, e)
        assert e.arm_id == session.get(type(circles[0]), e.space_id).arm_id
    assert sorted(e.space_id for e in session.scalars(select(Enrolment).where(
        Enrolment.study_id == setup.study.id))) == sorted(c.id for c in circles)
    assert session.scalar(select(Allocation.id).where(Allocation.enrolment_id.is_not(None))) is None


def test_a_place_of_the_sequence_cannot_be_taken_twice(session, world):
    setup = make_study(session, world)
    e = consented(session, setup, participant(session))
    service.randomise(session, session.get(type(world.alice), e.user_id), e)
    first = session.scalar(select(Allocation).where(Allocation.enrolment_id == e.id))
    with pytest.raises(IntegrityError):
        with session.begin_nested():
            session.add(Allocation(study_id=setup.study.id, arm_id=first.arm_id, stratum=first.stratum,
                                   sequence_index=first.sequence_index))
            session.flush()


def test_concurrent_allocations_never_reuse_a_place(database, world):
    with dbmod.transaction() as s:
        setup = make_study(s, world, circles_per_arm=2)
        ids = []
        for _ in range(12):
            person = participant(s)
            ids.append((consented(s, setup, person).id, person.id))
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker(chunk):
        try:
            barrier.wait(timeout=10)
            for enrolment_id, user_id in chunk:
                with dbmod.transaction() as s:
                    from peerlift.identity.models import User

                    service.randomise(s, s.get(User, user_id), s.get(Enrolment, enrolment_id))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(ids[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with dbmod.transaction(write=False) as s:
        places = sorted(s.scalars(select(Allocation.sequence_index).where(Allocation.study_id == setup.study.id)))
    assert places == list(range(12))
    assert count_rows(Enrolment, Enrolment.status == EnrolmentStatus.randomised) == 12
