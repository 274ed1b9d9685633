"""The learning dashboard (staff): the loop at a glance, and "Train now".

One template renders the page and, for the page's own polling, its live part
(``?part=live``): the figures read the same with JavaScript off, and the
charts (Chart.js, vendored) draw from the JSON embedded in that part. Each
version's thumbs are also split between grounded replies (answered from the
user's documents) and plain ones, from feedback's stats.
"""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from chat.refusals import Refusal
from feedback import stats
from live.staff import staff_required
from training import dashboard, tasks
from training.bradley_terry import MIN_VOTES


@staff_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    data = dashboard.dashboard_data()
    _add_grounding(data["versions"])
    context = {
        "section": "dashboard",
        "data": data,
        "timeline": _timeline(data["versions"]),
        "chart_data": _chart_data(data),
        "min_votes": MIN_VOTES,
    }
    if request.GET.get("part") == "live":
        return render(request, "dashboard/_live.html", context)
    return render(request, "dashboard/dashboard.html", context)


@staff_required
@require_POST
def train_now(request: HttpRequest) -> HttpResponse:
    try:
        run = tasks.training_run_queue(trigger="manual")
    except Refusal as refusal:
        messages.error(request, refusal.message)
    else:
        plan = run.metrics.get("plan", "")
        # The page's script clears it once run's verdict shows below (static/js/dashboard.js).
        messages.success(
            request, f"Run {run.pk} queued. {plan}. Its progress shows below.", f"run-{run.pk}"
        )
    return redirect("review:dashboard")


def _add_grounding(versions: list[dict]) -> None:
    """Give each version row its ``grounded`` and ``plain`` figures (the row keeps its totals)."""
    split = stats.thumbs_by_version()
    for row in versions:
        total, grounded = split.get(row["name"], (stats.Thumbs(), stats.Thumbs()))
        row["grounded"] = _thumbs(grounded)
        row["plain"] = _thumbs(total.minus(grounded))


def _thumbs(thumbs: stats.Thumbs) -> dict:
    interval = thumbs.interval
    return {
        "replies": thumbs.replies,
        "ratings": thumbs.ratings,
        "ups": thumbs.ups,
        "up_rate": thumbs.up_rate,
        "low": interval[0] if interval else None,
        "high": interval[1] if interval else None,
    }


def _chart_data(data: dict) -> dict:
    """Only what the charts draw, so the page embeds no more than it needs."""
    return {
        "versions": [
            {key: row[key] for key in ("name", "up_rate", "low", "high", "ratings")}
            for row in data["versions"]
            if row["ratings"]
        ],
        "daily": data["daily"],
        "runs": [{"id": run["id"], "loss": run["loss"]} for run in data["runs"]],
    }


def _timeline(versions: list[dict]) -> dict:
    """Each version's span from first to last reply served, in percent of the whole span."""
    spans = [row for row in versions if row["first_served"]]
    if not spans:
        return {"rows": [], "start": None, "end": None}
    start = min(datetime.datetime.fromisoformat(row["first_served"]) for row in spans)
    end = max(datetime.datetime.fromisoformat(row["last_served"]) for row in spans)
    total = (end - start).total_seconds() or 1.0
    rows = []
    for index, row in enumerate(spans):
        first = datetime.datetime.fromisoformat(row["first_served"])
        last = datetime.datetime.fromisoformat(row["last_served"])
        left = (first - start).total_seconds() / total * 100
        width = max((last - first).total_seconds() / total * 100, 0.8)
        rows.append(
            {
                **row,
                "y": index * 24,
                "left": f"{left:.2f}",
                "width": f"{width:.2f}",
                "first": f"{first:%Y-%m-%d %H:%M}",
                "last": f"{last:%Y-%m-%d %H:%M}",
            }
        )
    return {"rows": rows, "start": start, "end": end, "height": len(rows) * 24}
