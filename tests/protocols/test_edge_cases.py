"""Protocol edge cases written apart from the checker, from the format's documentation only
(tests/data/protocol_cases.yaml). Each invalid case lists the line and a fragment of every
problem a reader of the spec expects; each valid case must pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from peerlift.protocols.loader import ProtocolInvalid, parse

CASES = YAML(typ="safe").load((Path(__file__).parents[1] / "data" / "protocol_cases.yaml").read_text())


def test_the_set_is_substantial():
    assert len(CASES) >= 45
    assert len({c["name"] for c in CASES}) == len(CASES)
    assert sum(1 for c in CASES if c["valid"]) >= 15 and sum(1 for c in CASES if not c["valid"]) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case):
    if case["valid"]:
        parse(case["file"], "case.yaml")
        return
    with pytest.raises(ProtocolInvalid) as caught:
        parse(case["file"], "case.yaml")
    problems = caught.value.problems
    assert all(p.line >= 1 for p in problems)
    for expected in case["expect"]:
        on_line = [p.message for p in problems if p.line == expected["line"]]
        assert any(expected["contains"].lower() in m.lower() for m in on_line), (
            f"expected a problem on line {expected['line']} mentioning {expected['contains']!r}; "
            f"got: {[p.format('case.yaml') for p in problems]}")
