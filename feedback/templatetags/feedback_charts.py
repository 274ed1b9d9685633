"""A dependency-free SVG chart of the daily thumbs-up rate, for the stats page."""

from django import template
from django.utils.html import format_html, format_html_join

register = template.Library()

WIDTH, HEIGHT, BAR_GAP = 240, 60, 2


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


@register.simple_tag
def daily_chart(daily: list[tuple[str, int, int]]) -> str:
    """One bar per day: height = share of thumbs up; the title gives the counts."""
    if not daily:
        return "—"
    days = daily[-30:]
    bar = max(2, (WIDTH - BAR_GAP * len(days)) // len(days))
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="#417690"><title>{}: {} of {} up</title></rect>',
        (
            (
                index * (bar + BAR_GAP),
                HEIGHT - round(HEIGHT * ups / total),
                bar,
                round(HEIGHT * ups / total),
                day,
                ups,
                total,
            )
            for index, (day, ups, total) in enumerate(days)
        ),
    )
    return format_html(
        '<svg class="lc-chart" width="{}" height="{}" role="img" aria-label="Thumbs-up rate per day">'
        '<rect width="100%" height="100%" fill="#f0f0f0"></rect>{}</svg>',
        WIDTH,
        HEIGHT,
        bars,
    )
