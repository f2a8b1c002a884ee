"""The CONSORT-EHEALTH flow of a study, counted from its enrolments, and drawn as SVG.

- assessed: enrolments screened (every enrolment past the invitation);
- excluded: not randomised, with reasons (the exclusion reason of those screened out, declined
  consent, and eligible or consented people not randomised yet);
- randomised, and allocated per arm;
- received the intervention: active at least once after randomisation (any recorded action);
- lost to follow-up: not withdrawn, but not active in the last ``LOST_AFTER_DAYS`` days (or ever);
  discontinued: withdrawn, with reasons;
- analysed: everyone randomised (intention to treat) except withdrawn people whose data was
  deleted at their request.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlift.research.models import Arm, Enrolment, EnrolmentStatus, Study, StudyDesign

LOST_AFTER_DAYS = 14


@dataclass
class ArmFlow:
    arm_id: int
    name: str
    allocated: int = 0
    received: int = 0
    lost: int = 0
    discontinued: int = 0
    discontinued_reasons: Counter = field(default_factory=Counter)
    analysed: int = 0
    excluded_from_analysis: int = 0


@dataclass
class Flow:
    assessed: int
    excluded: int
    excluded_reasons: list[tuple[str, int]]
    randomised: int
    arms: list[ArmFlow]


def flow(session: Session, study: Study, metrics=None) -> Flow:
    from peerlift.research.export import withdrawal_choice

    design = session.get(StudyDesign, study.id)
    enrolments = session.scalars(select(Enrolment).where(Enrolment.study_id == study.id)).all()
    arms = {a.id: ArmFlow(a.id, a.name) for a in session.scalars(select(Arm).where(Arm.study_id == study.id)
                                                                  .order_by(Arm.id))}
    last_active: dict[int, int | None] = {}
    days_enrolled: dict[int, int] = {}
    if metrics is not None:
        for p in metrics.participants:
            last_active[p["user_id"]] = p["last_active_day"]
            days_enrolled[p["user_id"]] = p["days_enrolled"]
    assessed = [e for e in enrolments if e.status != EnrolmentStatus.invited]
    reasons: Counter = Counter()
    randomised = 0
    for e in assessed:
        if e.randomised_at is None or e.arm_id is None:
            if e.status == EnrolmentStatus.ineligible:
                reasons[f"Not meeting inclusion criteria: {e.exclusion_reason or 'no reason recorded'}"] += 1
            elif e.status == EnrolmentStatus.declined:
                reasons["Declined to participate"] += 1
            elif e.status == EnrolmentStatus.withdrawn:
                reasons["Withdrew before randomisation"] += 1
            else:
                reasons["Not randomised yet"] += 1
            continue
        randomised += 1
        arm = arms.get(e.arm_id)
        if arm is None:
            continue
        arm.allocated += 1
        withdrawn = e.status == EnrolmentStatus.withdrawn or e.withdrawn_at is not None
        last = last_active.get(e.user_id)
        if last is not None:
            arm.received += 1
        if withdrawn:
            arm.discontinued += 1
            arm.discontinued_reasons[e.withdrawal_reason or "no reason given"] += 1
            if withdrawal_choice(e, design) == "delete":
                arm.excluded_from_analysis += 1
                continue
        elif last is None or days_enrolled.get(e.user_id, 0) - 1 - last > LOST_AFTER_DAYS:
            arm.lost += 1
        arm.analysed += 1
    return Flow(len(assessed), sum(reasons.values()), sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
                randomised, list(arms.values()))


# --- drawing ------------------------------------------------------------------------------------------

BOX_W, LINE_H, PAD = 250, 17, 10


def _box(x: float, y: float, lines: list[str], w: float = BOX_W, bold_first: bool = True) -> tuple[str, float]:
    h = PAD * 2 + LINE_H * len(lines)
    parts = [f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="#ffffff" stroke="#333333"/>']
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if bold_first and i == 0 else ""
        parts.append(f'<text x="{x + PAD}" y="{y + PAD + LINE_H * (i + 1) - 4}"{weight}>{escape(line)}</text>')
    return "\n".join(parts), h


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333333" marker-end="url(#arrow)"/>'


def _fit(text: str, width: int = 36) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > width and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + ([line] if line else [])


def svg(f: Flow) -> str:
    """The flow diagram: enrolment at the top, one column per arm below."""
    n = max(len(f.arms), 1)
    col_w = BOX_W + 30
    width = max(col_w * n + 30, 2 * col_w + 60)
    parts: list[str] = []
    centre = width / 2
    y = 20
    box, h = _box(centre - BOX_W / 2 - col_w / 2, y, ["Assessed for eligibility", f"(n = {f.assessed})"])
    parts.append(box)
    top_x = centre - col_w / 2
    excluded = [f"Excluded (n = {f.excluded})"]
    for reason, count in f.excluded_reasons[:6]:
        excluded += _fit(f"- {reason} (n = {count})")
    ex_box, ex_h = _box(centre + 20, y + h + 10, excluded)
    parts.append(ex_box)
    parts.append(_arrow(top_x, y + h, top_x, y + h + 10 + ex_h + 30))
    parts.append(_arrow(top_x, y + h + 10 + ex_h / 2, centre + 20, y + h + 10 + ex_h / 2))
    y = y + h + 10 + ex_h + 30
    box, h = _box(top_x - BOX_W / 2, y, ["Randomised", f"(n = {f.randomised})"])
    parts.append(box)
    y_arms = y + h + 40
    rows: list[list[list[str]]] = []
    for arm in f.arms:
        discontinued = [f"Discontinued (n = {arm.discontinued})"]
        for reason, count in arm.discontinued_reasons.most_common(3):
            discontinued += _fit(f"- {reason} (n = {count})")
        rows.append([
            _fit(f"Allocated to {arm.name}", 34) + [f"(n = {arm.allocated})",
                                                     f"Received the intervention (n = {arm.received})",
                                                     f"Did not receive it (n = {arm.allocated - arm.received})"],
            [f"Lost to follow-up (n = {arm.lost})", *discontinued],
            [f"Analysed (n = {arm.analysed})",
             f"Excluded from analysis (n = {arm.excluded_from_analysis})",
             "(data deleted on withdrawal)" if arm.excluded_from_analysis else ""],
        ])
    heights = [max((PAD * 2 + LINE_H * len(r[k])) for r in rows) if rows else 40 for k in range(3)]
    labels = ["Allocation", "Follow-up", "Analysis"]
    for i, arm_rows in enumerate(rows):
        x = 15 + i * col_w + (width - col_w * n - 30) / 2
        parts.append(_arrow(top_x, y + h, x + BOX_W / 2, y_arms))
        yy = y_arms
        for k, lines in enumerate(arm_rows):
            lines = [ln for ln in lines if ln]
            box, bh = _box(x, yy, lines)
            parts.append(box)
            if k < 2:
                parts.append(_arrow(x + BOX_W / 2, yy + bh, x + BOX_W / 2, yy + heights[k] + 30))
            yy += heights[k] + 30
    height = y_arms + sum(heights) + 60 + 20
    yy = y_arms
    for k, label in enumerate(labels):
        parts.append(f'<text x="4" y="{yy - 8}" font-weight="bold" fill="#2f6f5e">{label}</text>')
        yy += heights[k] + 30
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="CONSORT flow diagram" '
            f'font-family="system-ui, sans-serif" font-size="13">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333333"/></marker></defs>'
            + "\n".join(parts) + "</svg>")
