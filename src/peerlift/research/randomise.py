"""Concealed allocation sequences: simple, permuted blocks of random size, stratified blocks, and
whole circles as the units of a cluster trial.

A sequence is a pure function of the study's concealed seed, the stratum and the place in the
sequence: each block draws its size and its order from a random generator seeded with an HMAC
of (stratum, block number) under the seed. The same seed gives the same sequence, always; the
seed is generated with ``secrets`` when the study is created and no route, page or export
shows it. The next free place of a stratum is taken under a lock of the study's design row and
a unique constraint on (study, stratum, sequence index), so two allocations never share one.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from peerlift.research.models import Allocation, Arm, Randomisation, StudyDesign

CLUSTER_STRATUM = "circles"


def new_seed() -> str:
    return secrets.token_hex(32)


def _rng(seed: str, stratum: str, block: int) -> random.Random:
    digest = hmac.new(seed.encode(), f"{stratum}\x1f{block}".encode(), hashlib.sha256).digest()
    return random.Random(int.from_bytes(digest, "big"))


def block(seed: str, stratum: str, number: int, arm_ids: Sequence[int], block_sizes: Sequence[int]) -> list[int]:
    """Block ``number`` of a stratum: a size drawn from ``block_sizes`` and a shuffled order in
    which each arm appears equally often."""
    rng = _rng(seed, stratum, number)
    size = rng.choice(list(block_sizes))
    order = list(arm_ids) * (size // len(arm_ids))
    rng.shuffle(order)
    return order


def arm_at(scheme: Randomisation, seed: str, stratum: str, index: int, arm_ids: Sequence[int],
           block_sizes: Sequence[int]) -> int:
    """The arm at place ``index`` (0-based) of the sequence of ``stratum``."""
    arm_ids = sorted(arm_ids)
    if scheme == Randomisation.simple:
        return _rng(seed, stratum, index).choice(arm_ids)
    sizes = list(block_sizes) or [2 * len(arm_ids)]
    number, start = 0, 0
    while True:
        order = block(seed, stratum, number, arm_ids, sizes)
        if index < start + len(order):
            return order[index - start]
        start += len(order)
        number += 1


def sequence(scheme: Randomisation, seed: str, stratum: str, length: int, arm_ids: Sequence[int],
             block_sizes: Sequence[int]) -> list[int]:
    """The first ``length`` arms of a stratum's sequence (for tests and checks; never shown)."""
    arm_ids = sorted(arm_ids)
    if scheme == Randomisation.simple:
        return [_rng(seed, stratum, i).choice(arm_ids) for i in range(length)]
    out: list[int] = []
    number = 0
    sizes = list(block_sizes) or [2 * len(arm_ids)]
    while len(out) < length:
        out += block(seed, stratum, number, arm_ids, sizes)
        number += 1
    return out[:length]


def block_bounds(seed: str, stratum: str, length: int, arm_ids: Sequence[int],
                 block_sizes: Sequence[int]) -> list[tuple[int, int]]:
    """(start, end) of each block that the first ``length`` places fill completely."""
    bounds, start, number = [], 0, 0
    while True:
        size = len(block(seed, stratum, number, sorted(arm_ids), block_sizes))
        if start + size > length:
            return bounds
        bounds.append((start, start + size))
        start += size
        number += 1


def stratum_of(design: StudyDesign, strata: dict) -> str:
    """The stratum name of a person's declared factor values ("" when the scheme has none)."""
    if design.scheme != Randomisation.stratified:
        return ""
    return "|".join(f"{f['key']}={strata.get(f['key'], '')}" for f in design.factors)


@dataclass(frozen=True)
class Drawn:
    arm_id: int
    stratum: str
    sequence_index: int


def allocate(session: Session, design: StudyDesign, stratum: str, *, enrolment_id: int | None = None,
             space_id: int | None = None, actor_id: int | None = None, attempts: int = 5) -> Allocation:
    """Take the next place of ``stratum`` and write its Allocation row. The design row is locked
    for the rest of the unit of work; should another writer still take the same place, the unique
    constraint refuses it and the next place is tried."""
    session.execute(select(StudyDesign.study_id).where(StudyDesign.study_id == design.study_id).with_for_update())
    arm_ids = sorted(session.scalars(select(Arm.id).where(Arm.study_id == design.study_id)))
    scheme = Randomisation.blocks if design.scheme == Randomisation.cluster else design.scheme
    for _ in range(attempts):
        used = session.scalar(select(func.max(Allocation.sequence_index)).where(
            Allocation.study_id == design.study_id, Allocation.stratum == stratum))
        index = 0 if used is None else used + 1
        arm_id = arm_at(scheme, design.concealed_seed, stratum, index, arm_ids, design.block_sizes)
        allocation = Allocation(study_id=design.study_id, enrolment_id=enrolment_id, space_id=space_id,
                                arm_id=arm_id, stratum=stratum, sequence_index=index, allocated_by_id=actor_id)
        try:
            with session.begin_nested():
                session.add(allocation)
                session.flush()
        except IntegrityError:
            if enrolment_id is not None and session.scalar(
                    select(Allocation.id).where(Allocation.enrolment_id == enrolment_id)) is not None:
                raise
            continue
        return allocation
    raise RuntimeError("could not take a free place in the allocation sequence")
