"""The study report: CONSORT-EHEALTH flow, engagement and retention plots, protocol fidelity,
cost per participant and a safety summary. One HTML file with its SVG inline (it opens offline and
prints well); a PDF beside it when Chromium is installed to print it.

The charts here (pygal, no JavaScript) are also what the researcher dashboard serves."""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygal
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from peerlift import __version__
from peerlift.db import utcnow
from peerlift.research import consort, cost
from peerlift.research.metrics import Metrics, cohort, study_metrics
from peerlift.research.models import Arm, Study
from peerlift.tracking.charts import STYLE, clean

STEPS = ("metrics", "flow", "cost", "safety", "charts", "html", "pdf")


def _chart(kind, title: str, *, y_title: str = "", width: int = 640, height: int = 320, **extra):
    return kind(js=[], style=STYLE, width=width, height=height, title=title, y_title=y_title, show_legend=True,
                legend_at_bottom=True, truncate_legend=-1, x_label_rotation=0, truncate_label=-1, margin=16,
                no_data_text="No data yet", explicit_size=False, **extra)


def _arm_names(session: Session, study: Study) -> dict[int, str]:
    return {a.id: a.name for a in session.scalars(select(Arm).where(Arm.study_id == study.id).order_by(Arm.id))}


def engagement_svg(metrics: Metrics, arms: dict[int, str]) -> str:
    """Actions (posts, comments, reactions, votes, messages) per participant per day, per arm."""
    chart = _chart(pygal.DateLine, "Engagement over time", y_title="actions per participant")
    chart.x_value_formatter = lambda d: d.strftime("%d %b")
    sizes = {a["arm_id"]: a["participants"] for a in metrics.arms}
    days = sorted({d["day"] for d in metrics.days})
    if days:
        span = max((days[-1] - days[0]).days, 1)
        chart.x_labels = [days[0] + dt.timedelta(days=n) for n in range(0, span + 1, max(span // 5, 1))]
    for arm_id, name in arms.items():
        points = [(d["day"], round(sum(d[k] for k in ("posts", "comments", "reactions", "poll_votes", "dms"))
                                   / max(sizes.get(arm_id, 1), 1), 2))
                  for d in metrics.days if d["arm_id"] == arm_id]
        if points:
            chart.add(name, points)
    return clean(chart.render(is_unicode=True))


def retention_svg(metrics: Metrics, arms: dict[int, str]) -> str:
    chart = _chart(pygal.Line, "Retention: still active, by week", y_title="% of participants", range=(0, 100))
    weeks = max((len(c) for c in metrics.retention.values()), default=0)
    chart.x_labels = [f"wk {w + 1}" for w in range(weeks)]
    for arm_id, name in arms.items():
        curve = metrics.retention.get(arm_id)
        if curve:
            chart.add(name, [round(v * 100, 1) for v in curve])
    return clean(chart.render(is_unicode=True))


def cost_svg(table: list[cost.ArmCost], currency: str) -> str:
    chart = _chart(pygal.StackedBar, "Cost per participant", y_title=currency)
    chart.x_labels = [row.arm for row in table]
    chart.add("Staff time", [round(row.staff_cost / row.participants, 2) if row.participants else None
                             for row in table])
    chart.add("Fixed costs", [round(row.fixed_cost / row.participants, 2) if row.participants else None
                              for row in table])
    return clean(chart.render(is_unicode=True))


def safety_summary(session: Session, study: Study) -> dict[str, Any]:
    """Escalations of the study's circles or participants: how many, their state, and how long
    the clinicians took to acknowledge them."""
    from peerlift.safety.models import Escalation, TriageRecord

    c = cohort(session, study)
    people = [p.user_id for p in c.participants] or [0]
    circles = list(c.circles) or [0]
    rows = session.scalars(select(Escalation).where(
        or_(Escalation.space_id.in_(circles), Escalation.subject_id.in_(people))).order_by(Escalation.id)).all()
    waits = [(e.acknowledged_at - e.raised_at).total_seconds() / 60 for e in rows if e.acknowledged_at]
    late = sum(1 for e in rows if e.deadline_at and ((e.acknowledged_at or utcnow()) > e.deadline_at))
    levels: dict[str, int] = {}
    for level, in session.execute(select(TriageRecord.level).where(
            or_(TriageRecord.space_id.in_(circles), TriageRecord.author_id.in_(people)))):
        levels[level] = levels.get(level, 0) + 1
    return {
        "escalations": len(rows),
        "by_status": {s: sum(1 for e in rows if e.status.value == s) for s in ("open", "acknowledged", "resolved")},
        "acknowledged": len(waits),
        "median_ack_minutes": round(statistics.median(waits), 1) if waits else None,
        "max_ack_minutes": round(max(waits), 1) if waits else None,
        "past_deadline": late,
        "triage_levels": dict(sorted(levels.items())),
    }


@dataclass
class ReportData:
    study: Study
    generated_at: dt.datetime
    metrics: Metrics
    arms: dict[int, str]
    flow: consort.Flow
    costs: list[cost.ArmCost]
    currency: str
    safety: dict[str, Any]
    charts: dict[str, str]
    version: str = __version__


def gather(session: Session, study: Study, say: Callable[[str], None] = lambda _s: None) -> ReportData:
    say("Computing engagement metrics")
    metrics = study_metrics(session, study)
    arms = _arm_names(session, study)
    say("Counting the CONSORT flow")
    f = consort.flow(session, study, metrics)
    say("Costing the arms")
    table, currency = cost.costs(session, study, metrics)
    say("Summarising safety")
    safety = safety_summary(session, study)
    say("Drawing charts")
    charts = {"consort": consort.svg(f), "engagement": engagement_svg(metrics, arms),
              "retention": retention_svg(metrics, arms), "cost": cost_svg(table, currency)}
    return ReportData(study, metrics.now, metrics, arms, f, table, currency, safety, charts)


def render_html(data: ReportData) -> str:
    from markupsafe import Markup

    from peerlift.web.templating import TEMPLATES

    template = TEMPLATES.env.get_template("research/report.html")
    return template.render(d=data, svg={k: Markup(_strip_xml_declaration(v)) for k, v in data.charts.items()})


def _strip_xml_declaration(svg: str) -> str:
    return svg.split("?>", 1)[1] if svg.startswith("<?xml") else svg


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: Path, pdf: Path) -> bool:
    browser = chromium()
    if browser is None:
        return False
    result = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                             f"--print-to-pdf={pdf}", html.resolve().as_uri()],
                            capture_output=True, timeout=120)
    return result.returncode == 0 and pdf.exists() and pdf.stat().st_size > 0


def write_report(session: Session, study_ref: str, out: Path, *, pdf: bool = True,
                 progress: Callable[[str], None] | None = None) -> list[Path]:
    from peerlift.research.export import find_study

    say = progress or (lambda _s: None)
    study = find_study(session, study_ref)
    data = gather(session, study, say)
    say("Writing the HTML")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    html_path = out / "report.html"
    html_path.write_text(render_html(data), encoding="utf-8")
    written = [html_path]
    say("Printing the PDF")
    if pdf and print_pdf(html_path, out / "report.pdf"):
        written.append(out / "report.pdf")
    return written
