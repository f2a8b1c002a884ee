"""The labelled scoring cases (written from the published manuals, apart from the engine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from peerlift.errors import PeerliftError
from peerlift.tracking.scoring import score_shipped

CASES = YAML(typ="safe").load((Path(__file__).parents[1] / "data" / "instrument_cases.yaml").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case):
    if "error" in case:
        with pytest.raises(PeerliftError) as caught:
            score_shipped(case["instrument"], case["answers"], case.get("context"))
        assert caught.value.code == case["error"], caught.value.message
        assert 400 <= caught.value.status_code < 500
        return
    result = score_shipped(case["instrument"], case["answers"], case.get("context"))
    expect = case["expect"]
    assert result.total == expect["total"]
    assert result.band == expect["band"]
    assert result.alerts == expect["alerts"]
    assert result.percentage == expect.get("percentage")


def test_every_case_is_run():
    assert len(CASES) == 112
