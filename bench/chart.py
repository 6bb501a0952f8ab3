"""The chart, docs/benchmarks.svg: per goal, the median ratio as a bar on a log scale."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from figures import DASH, TIMES, num
from peers import GOALS, Goal, short
from results import Results, Stat, Summary

SVG_WIDTH = 820
PLOT_LEFT, PLOT_RIGHT = 260, 660
ROW_HEIGHT = 50
PLOT_TOP = 128
FONT = "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
MET, MISSED, NO_DATA, INK, GREY, GRID = "#1a7f37", "#cf222e", "#8c959f", "#1f2328", "#57606a", "#d0d7de"


@dataclass(frozen=True)
class Scale:
    """The log-scale x axis: whole decades from `low` to `high` over the plot's width."""

    low: float
    high: float

    @classmethod
    def covering(cls, values: list[float]) -> Scale:
        """Whole decades covering `values`, at least 0.1 to 10."""
        low, high = min([0.1, *values]), max([10.0, *values])
        return cls(10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high)))

    def x(self, value: float) -> float:
        """The x coordinate of a ratio."""
        share = math.log10(value / self.low) / math.log10(self.high / self.low)
        return PLOT_LEFT + share * (PLOT_RIGHT - PLOT_LEFT)

    def ticks(self) -> list[tuple[float, bool]]:
        """1, 2 and 5 times each decade within the scale, each with whether it is a decade."""
        decades = round(math.log10(self.high / self.low))
        found = [(self.low * 10**d * step, step == 1) for d in range(decades + 1) for step in (1, 2, 5)]
        return [(value, major) for value, major in found if value <= self.high * 1.0001]


def svg_text(
    x: float, y: float, text: str, size: float, fill: str = INK, anchor: str = "start", weight: str = "normal"
) -> str:
    """An SVG text element."""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" text-anchor="{anchor}" '
        f'font-weight="{weight}">{html.escape(text)}</text>'
    )


def svg_line(x1: float, y1: float, x2: float, y2: float, stroke: str, width: float) -> str:
    """An SVG line element."""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}" stroke-width="{width}"/>'


def render_svg(summary: Summary) -> str:
    """The chart: per goal, the median ratio as a bar from 1x on a log scale, min-max whiskers and the goal."""
    rows = [(goal, summary.ratios.get(goal.pair)) for goal in GOALS]
    scale = Scale.covering([v for goal, r in rows for v in [goal.limit, *([r.low, r.high] if r else [])]])
    bottom = PLOT_TOP + len(rows) * ROW_HEIGHT
    height = bottom + 62
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{height}" '
        f'viewBox="0 0 {SVG_WIDTH} {height}" font-family="{FONT}" role="img" '
        'aria-label="twofa time divided by its peers time per language, with the goals">',
        f'<rect width="{SVG_WIDTH}" height="{height}" fill="#ffffff"/>',
        *svg_title(summary.results),
        *svg_legend(98),
        *svg_axis(scale, bottom),
    ]
    for index, (goal, ratio) in enumerate(rows):
        parts += svg_row(goal, ratio, PLOT_TOP + (index + 0.5) * ROW_HEIGHT, scale)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def svg_title(results: Results) -> list[str]:
    """The title and the two lines that say what the bars are."""
    quick = " (a --quick run)" if results.quick else ""
    return [
        svg_text(16, 30, "twofa ÷ the library each language would otherwise use", 18, weight="600"),
        svg_text(16, 52, f"Time per sign-in check, log scale: below 1{TIMES} twofa is faster.", 12.5, GREY),
        svg_text(
            16,
            70,
            f"Bar: median of the per-round ratios over {len(results.rounds)} rounds{quick}; "
            f"whisker: min{DASH}max; {results.date}.",
            12.5,
            GREY,
        ),
    ]


def svg_legend(y: float) -> list[str]:
    """The legend line: bar colours, the goal tick and the whisker."""
    return [
        f'<rect x="16" y="{y - 10}" width="14" height="12" fill="{MET}"/>',
        svg_text(36, y, "goal met", 12.5),
        f'<rect x="110" y="{y - 10}" width="14" height="12" fill="{MISSED}"/>',
        svg_text(130, y, "goal missed", 12.5),
        svg_line(230, y - 13, 230, y + 3, INK, 3),
        svg_text(240, y, "goal (limit)", 12.5),
        svg_line(330, y - 4, 360, y - 4, INK, 1.5),
        svg_line(330, y - 9, 330, y + 1, INK, 1.5),
        svg_line(360, y - 9, 360, y + 1, INK, 1.5),
        svg_text(368, y, f"min{DASH}max over rounds; the black line at 1{TIMES}: as fast as the peer", 12.5),
    ]


def svg_axis(scale: Scale, bottom: float) -> list[str]:
    """Grid lines at 1, 2 and 5 per decade, decade labels, and the line at 1x."""
    parts = []
    for value, major in scale.ticks():
        parts.append(svg_line(scale.x(value), PLOT_TOP - 8, scale.x(value), bottom, GRID, 1 if major else 0.5))
        if major:
            parts.append(svg_text(scale.x(value), bottom + 18, f"{value:g}{TIMES}", 12.5, GREY, "middle"))
    one = scale.x(1)
    return [
        *parts,
        svg_line(one, PLOT_TOP - 8, one, bottom, INK, 1.5),
        svg_text(one - 8, bottom + 38, "← twofa faster", 12.5, GREY, "end"),
        svg_text(one + 8, bottom + 38, "twofa slower →", 12.5, GREY),
    ]


def svg_row(goal: Goal, ratio: Stat | None, middle: float, scale: Scale) -> list[str]:
    """One bar of the chart, with its label, whisker, goal tick and figure."""
    parts = [
        svg_text(16, middle - 3, goal.label + (" (an aim)" if goal.aim else ""), 14, weight="600"),
        svg_text(16, middle + 14, f"{short(goal.pair.twofa)} ÷ {short(goal.pair.peer)}", 11.5, GREY),
    ]
    if ratio is None:
        parts.append(svg_text(PLOT_RIGHT + 12, middle + 5, "not measured", 13, NO_DATA))
    else:
        met = goal.met(ratio.median)
        colour = MET if met else MISSED
        start, end = sorted((scale.x(1), scale.x(ratio.median)))
        low, high = scale.x(ratio.low), scale.x(ratio.high)
        parts += [
            f'<rect x="{start:.1f}" y="{middle - 9:.1f}" width="{max(end - start, 1.5):.1f}" height="18" '
            f'fill="{colour}" fill-opacity="0.85"/>',
            svg_line(low, middle, high, middle, INK, 1.5),
            svg_line(low, middle - 5, low, middle + 5, INK, 1.5),
            svg_line(high, middle - 5, high, middle + 5, INK, 1.5),
            svg_text(
                PLOT_RIGHT + 12,
                middle + 5,
                f"{num(ratio.median)}{TIMES} {'met' if met else 'missed'}",
                14,
                colour,
                weight="600",
            ),
        ]
    limit = scale.x(goal.limit)
    parts += [
        svg_line(limit, middle - 14, limit, middle + 14, INK, 3),
        svg_text(limit, middle - 17, goal.bound, 10.5, INK, "middle"),
    ]
    return parts
