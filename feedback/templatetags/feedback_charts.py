"""A dependency-free SVG chart of the daily thumbs-up rate, for the stats page.

Drawn on the server, so it reads the same without JavaScript: axes, 0/50/100 %
ticks, dates under the bars, each bar's counts in its tooltip and, while the
bars are wide enough, its rate above it. ``daily_table`` lists the same figures.
"""

from __future__ import annotations

import datetime
import math

from django import template
from django.utils.html import format_html, format_html_join

register = template.Library()

DAYS = 30  # the last 30 days with ratings
WIDTH, HEIGHT = 360, 150
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 14, 22  # room for the ticks, the dates and the rates
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
MOST_RATE_LABELS = 12  # more bars than this leave their rates to the tooltips
MOST_DATE_LABELS = 6
AXIS, GRID, BAR = "#666", "#ddd", "#417690"


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


@register.simple_tag
def daily_chart(daily: list[tuple[str, int, int]]) -> str:
    """One bar per day: height = share of thumbs up; the title gives the counts."""
    if not daily:
        return "—"
    days = daily[-DAYS:]
    return format_html(
        '<svg class="lc-chart" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="Thumbs-up rate per day, {} to {}" font-size="9" fill="#333">{}{}{}</svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        _label(days[0][0]),
        _label(days[-1][0]),
        _axes(),
        _bars(days),
        _dates(days),
    )


@register.simple_tag
def daily_table(daily: list[tuple[str, int, int]]) -> str:
    """The chart's figures, day by day, folded away under the chart."""
    if not daily:
        return ""
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((day, ups, total, percent(ups / total)) for day, ups, total in daily[-DAYS:]),
    )
    return format_html(
        '<details class="lc-daily"><summary>Per day</summary><table>'
        "<tr><th>day</th><th>up</th><th>ratings</th><th>rate</th></tr>{}</table></details>",
        rows,
    )


def _y(share: float) -> str:
    return _number(TOP + PLOT_HEIGHT * (1 - share))


def _number(value: float) -> str:
    """SVG coordinates to a tenth of a pixel (format_html escapes to text first)."""
    return f"{value:.1f}"


def _axes() -> str:
    """The y axis with 0 / 50 / 100 % ticks and grid lines, and the x axis."""
    ticks = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"></line>'
        '<text class="lc-tick" x="{}" y="{}" text-anchor="end" dominant-baseline="middle">{}</text>',
        (
            (LEFT, _y(share), LEFT + PLOT_WIDTH, _y(share), GRID, LEFT - 4, _y(share), label)
            for share, label in ((0, "0%"), (0.5, "50%"), (1, "100%"))
        ),
    )
    return format_html(
        '{}<g class="lc-axis" stroke="{}"><line x1="{}" y1="{}" x2="{}" y2="{}"></line>'
        '<line x1="{}" y1="{}" x2="{}" y2="{}"></line></g>',
        ticks,
        AXIS,
        LEFT,
        TOP,
        LEFT,
        TOP + PLOT_HEIGHT,
        LEFT,
        TOP + PLOT_HEIGHT,
        LEFT + PLOT_WIDTH,
        TOP + PLOT_HEIGHT,
    )


def _bars(days: list[tuple[str, int, int]]) -> str:
    """Each day a group: its counts as the title of the whole slot's height (so a 0 %
    day has a tooltip too), the bar, and its rate above while the bars are few."""
    slot = PLOT_WIDTH / len(days)
    width = max(2.0, min(slot * 0.7, 40))
    labelled = len(days) <= MOST_RATE_LABELS
    return format_html_join(
        "",
        '<g class="lc-day"><title>{}: {} of {} up ({})</title>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="transparent"></rect>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>{}</g>',
        (
            (
                day,
                ups,
                total,
                percent(ups / total),
                _number(LEFT + slot * index),
                TOP,
                _number(slot),
                PLOT_HEIGHT,
                _number(LEFT + slot * (index + 0.5) - width / 2),
                _y(ups / total),
                _number(width),
                _number(PLOT_HEIGHT * ups / total),
                BAR,
                _value(LEFT + slot * (index + 0.5), ups / total) if labelled else "",
            )
            for index, (day, ups, total) in enumerate(days)
        ),
    )


def _value(centre: float, share: float) -> str:
    return format_html(
        '<text class="lc-value" x="{}" y="{}" text-anchor="middle">{}</text>',
        _number(centre),
        _number(TOP + PLOT_HEIGHT * (1 - share) - 3),
        percent(share),
    )


def _dates(days: list[tuple[str, int, int]]) -> str:
    """The first and last day, and evenly spaced ones between, under their bars."""
    slot = PLOT_WIDTH / len(days)
    step = math.ceil(len(days) / MOST_DATE_LABELS)
    shown = sorted({*range(0, len(days), step), len(days) - 1})
    if len(shown) > 1 and shown[-1] - shown[-2] < step:
        shown.pop(-2)  # the last day's label would run into its neighbour's
    return format_html_join(
        "",
        '<text class="lc-date" x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (_number(LEFT + slot * (index + 0.5)), TOP + PLOT_HEIGHT + 13, _label(days[index][0]))
            for index in shown
        ),
    )


def _label(day: str) -> str:
    """ "2 Dec" from "2026-12-02"."""
    date = datetime.date.fromisoformat(day)
    return f"{date.day} {date:%b}"
