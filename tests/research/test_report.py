"""The CONSORT flow counts, its SVG, and the report command (HTML, PDF when Chromium is there)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from peerlift import db as dbmod
from peerlift.cli import app
from peerlift.research import consort
from peerlift.research.metrics import study_metrics
from peerlift.research.models import EnrolmentStatus, Study
from tests.factories import create_user
from tests.research.analytics_factory import at, comment, design, enrol, post

runner = CliRunner()


@pytest.fixture
def flow_world(world):
    """Arm A: Alice active, Bob never active, Pat withdrew (data deleted). Arm B: Carol active
    in week 1 only (lost to follow-up). Two people screened out, one declined, one invited only."""
    w = world
    with dbmod.transaction() as s:
        design(s, w.study, withdrawal_rule="keep")
        enrol(s, w.study, w.alice, w.arm_a, w.circle)
        enrol(s, w.study, w.bob, w.arm_a, w.circle)
        enrol(s, w.study, w.pat, w.arm_a, w.circle, status=EnrolmentStatus.withdrawn, withdrawal_data="delete")
        enrol(s, w.study, w.carol, w.arm_b, w.other_circle)
        for name, status in (("Ian Ineligible", EnrolmentStatus.ineligible), ("Ivy Ineligible", EnrolmentStatus.ineligible),
                             ("Dan Declined", EnrolmentStatus.declined), ("Nia Invited", EnrolmentStatus.invited)):
            enrol(s, w.study, create_user(s, name), w.arm_a, w.circle, status=status)
        p = post(s, w.alice, w.circle, "Still here", at(20))
        comment(s, w.coach, w.circle, p, "Great", at(20, 1))
        post(s, w.carol, w.other_circle, "Hello", at(2))
        post(s, w.pat, w.circle, "Hi", at(1))
    return w


def test_consort_counts(flow_world):
    w = flow_world
    with dbmod.transaction(write=False) as s:
        study = s.get(Study, w.study.id)
        f = consort.flow(s, study, study_metrics(s, study, with_fidelity=False))
    assert (f.assessed, f.excluded, f.randomised) == (7, 3, 4)
    assert dict(f.excluded_reasons) == {"Not meeting inclusion criteria: under 18": 2, "Declined to participate": 1}
    a, b = f.arms
    # Pat's activity is not counted: Pat withdrew and asked for the data to be deleted.
    assert (a.allocated, a.received, a.lost, a.discontinued, a.analysed, a.excluded_from_analysis) == (3, 1, 1, 1, 2, 1)
    assert dict(a.discontinued_reasons) == {"moved away": 1}
    assert (b.allocated, b.received, b.lost, b.analysed) == (1, 1, 1, 1)
    svg = consort.svg(f)
    ET.fromstring(svg)  # well-formed
    for text in ("Assessed for eligibility", "(n = 7)", "Excluded (n = 3)", "Randomised", "(n = 4)",
                 "Allocated to Arm A", "Received the intervention (n = 1)", "Lost to follow-up (n = 1)",
                 "Analysed (n = 2)", "Excluded from analysis (n = 1)", "Declined to participate (n = 1)"):
        assert text in svg, text


def test_report_command_writes_html_and_pdf(flow_world, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--study", "trial", "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    for text in ("A test trial", "CONSORT", "Engagement over time", "Retention", "Protocol fidelity",
                 "Cost per participant", "Escalations", "Assessed for eligibility"):
        assert text in html, text
    assert html.count("<svg") >= 4 and "<script" not in html
    if shutil.which("chromium"):
        assert (out / "report.pdf").read_bytes().startswith(b"%PDF")


def test_report_of_an_unknown_study_fails_cleanly(database, tmp_path):
    result = runner.invoke(app, ["report", "--study", "nope", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "No study 'nope'" in result.output
    assert not (tmp_path / "r").exists()
