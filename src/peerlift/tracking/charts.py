"""Server-rendered SVG charts of a person's own trend (pygal, with its JavaScript left out).

The SVG is served as an image (``<img src=...svg>``): the page's CSP forbids inline scripts and
styles, and an image runs no script at all; the inline script pygal writes for its tooltips is
removed all the same, and the SVG response carries its own narrow policy for its inline styles.
"""

from __future__ import annotations

import datetime as dt
import re

import pygal
from pygal.style import Style

SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; script-src 'none'"
_SCRIPT_RE = re.compile(r"<script\b[^>]*>.*?</script>", re.S)

STYLE = Style(
    background="#ffffff", plot_background="#ffffff", foreground="#333333", foreground_strong="#111111",
    foreground_subtle="#dddddd", colors=("#2f6f5e", "#c0392b", "#7f8c8d"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=15, major_label_font_size=15, value_font_size=15, title_font_size=18,
)


def _chart(kind, title: str, *, y_title: str = "", range_: tuple[float, float] | None = None):
    return kind(
        js=[], style=STYLE, width=480, height=280, title=title, y_title=y_title, show_legend=False,
        show_minor_x_labels=False, x_label_rotation=0, truncate_label=-1, dots_size=4, stroke_style={"width": 3},
        range=range_, include_x_axis=False, no_data_text="Nothing logged yet", margin=16,
        disable_xml_declaration=False, explicit_size=False,
    )


def trend_svg(title: str, points: list[tuple[dt.date, float]], *, unit: str = "", goal: float | None = None,
              range_: tuple[float, float] | None = None) -> str:
    """Values by local date on a time axis (days without a value are simply not drawn), with an
    optional goal line."""
    chart = _chart(pygal.DateLine, title, y_title=unit, range_=range_)
    chart.x_value_formatter = lambda d: d.strftime("%d %b")
    chart.show_minor_x_labels = True
    if points:
        first, last = points[0][0], points[-1][0]
        span = max((last - first).days, 1)
        step = max(span // 4, 1)
        chart.x_labels = [first + dt.timedelta(days=n) for n in range(0, span + 1, step)]
        chart.add(title, [(d, v) for d, v in points], stroke_style={"width": 3})
        if goal is not None:
            chart.add("Goal", [(first, goal), (first + dt.timedelta(days=span), goal)], show_dots=False,
                      stroke_style={"width": 2, "dasharray": "6,4"})
    return clean(chart.render(is_unicode=True))


def scores_svg(title: str, points: list[tuple[dt.datetime, int]], *, max_total: int) -> str:
    chart = _chart(pygal.Line, title, y_title="score", range_=(0, max_total))
    if points:
        chart.x_labels = [moment.strftime("%d %b") for moment, _ in points]
        chart.x_labels_major_count = min(6, len(points))
        chart.add(title, [value for _, value in points], stroke_style={"width": 3})
    return clean(chart.render(is_unicode=True))


def clean(svg: str) -> str:
    return _SCRIPT_RE.sub("", svg)
