"""What the learning dashboard shows: the loop at a glance, read in a few queries.

Which version served when, the thumbs-up rate per version with its 95%
interval, approved feedback since the last run and when the next tick comes,
each run's stage, progress, loss and gate checks. Plain data for the template
and for the page's JSON (the charts draw from it).
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from chat.models import Message
from feedback.models import Rating
from feedback.stats import wilson_interval
from training import arena, selectors, services
from training.models import ModelVersion, TrainingRun

RECENT_RUNS = 8
TICK_TASK = "training.tick"


def dashboard_data() -> dict:
    # A fresh install has no version rows until something asks: the base model is one,
    # in service, as the admin's version list shows it.
    services.base_version_ensure()
    return {
        "now": timezone.now().isoformat(),
        "versions": version_rows(),
        "daily": daily_rates(),
        "loop": loop_state(),
        "runs": [run_row(run) for run in _recent_runs()],
        "leaderboard": arena.leaderboard(),
    }


def version_rows() -> list[dict]:
    """Every version: status, when it served its first and last reply, its thumbs."""
    served = {
        row["model_version"]: row
        for row in Message.objects.filter(role=Message.Role.ASSISTANT)
        .exclude(model_version="")
        .values("model_version")
        .annotate(replies=Count("id"), first=Min("created_at"), last=Max("created_at"))
    }
    rated = {
        row["model_version"]: row
        for row in Rating.objects.values("model_version").annotate(
            ratings=Count("id"), ups=Count("id", filter=Q(value=Rating.Value.UP))
        )
    }
    rows = []
    versions = list(ModelVersion.objects.order_by("created_at"))
    # Replies can name a model no version row stands for (written before versions
    # were recorded, or by a model configured by hand): they count too.
    known = {version.name for version in versions}
    strays = sorted((set(served) | set(rated)) - known)
    for version in [*versions, *(ModelVersion(name=name, status="") for name in strays)]:
        use, thumbs = served.get(version.name, {}), rated.get(version.name, {})
        ratings, ups = thumbs.get("ratings", 0), thumbs.get("ups", 0)
        interval = wilson_interval(ups, ratings)
        rows.append(
            {
                "id": version.pk,
                "name": version.name,
                "status": version.status,
                "status_label": version.status or "not a version",
                "method": version.method or "base model",
                "created_at": _iso(version.created_at),
                "activated_at": _iso(version.activated_at),
                "first_served": _iso(use.get("first")),
                "last_served": _iso(use.get("last")),
                "replies": use.get("replies", 0),
                "ratings": ratings,
                "up_rate": ups / ratings if ratings else None,
                "low": interval[0] if interval else None,
                "high": interval[1] if interval else None,
            }
        )
    return rows


def daily_rates(days: int = 30) -> dict:
    """Thumbs-up share per day and version over the last ``days`` days."""
    since = timezone.now() - datetime.timedelta(days=days)
    rows = (
        Rating.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "model_version")
        .annotate(ratings=Count("id"), ups=Count("id", filter=Q(value=Rating.Value.UP)))
        .order_by("day")
    )
    dates = sorted({row["day"].isoformat() for row in rows})
    series: dict[str, dict[str, dict]] = {}
    for row in rows:
        series.setdefault(row["model_version"], {})[row["day"].isoformat()] = {
            "ratings": row["ratings"],
            "up_rate": row["ups"] / row["ratings"],
        }
    return {"dates": dates, "series": series}


def loop_state() -> dict:
    """Feedback waiting for the next run, what a run would do with it, what is in flight."""
    from training.planning import run_plan  # loads the gate's thresholds (torch)

    in_flight = selectors.run_in_flight()
    plan = run_plan()
    return {
        "plan": plan.statement,
        "plan_runnable": plan.runnable,
        "new_feedback": selectors.new_feedback_count(),
        "needed": settings.TRAINING_MIN_NEW_FEEDBACK,
        "next_tick": _iso(next_tick()),
        "tick_seconds": settings.TRAINING_TICK_SECONDS,
        "in_flight": None if in_flight is None else in_flight.pk,
        "active": ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)
        .values_list("name", flat=True)
        .first(),
    }


def next_tick() -> datetime.datetime | None:
    """When beat runs the training tick next: its last run plus its interval.

    None when beat has never synced its schedule (beat not started yet).
    """
    task = PeriodicTask.objects.filter(task=TICK_TASK, enabled=True).select_related("interval")
    task = task.first()
    if task is None or task.interval is None:
        return None
    every = datetime.timedelta(**{task.interval.period: task.interval.every})
    last = task.last_run_at or task.date_changed or timezone.now()
    upcoming = last + every
    now = timezone.now()
    if upcoming < now:  # beat is behind or stopped: the next beat it makes
        return now
    return upcoming


def run_row(run: TrainingRun) -> dict:
    version = run.version
    checks = (version.gate_report or {}).get("checks", []) if version else []
    return {
        "id": run.pk,
        "status": run.status,
        "trigger": run.trigger,
        "stage": run.stage,
        "step": run.step,
        "total_steps": run.total_steps,
        "progress": run.progress,
        "created_at": run.created_at.isoformat(),
        "created": _display(run.created_at),
        "finished_at": _iso(run.finished_at),
        "finished": _display(run.finished_at),
        "in_flight": bool(run.in_flight),
        "reason": run.reason or run.error,
        "plan": run.metrics.get("plan", ""),
        "ratings": len(run.rating_ids),
        "pairs": len(run.pair_ids),
        "loss": [
            {"stage": point.get("stage", ""), "step": point.get("step"), "loss": point["loss"]}
            for point in run.history
            if point.get("loss") is not None
        ],
        "checks": [
            {
                "name": check["name"],
                "passed": check["passed"],
                "outcome": _outcome(check),
                "value": check.get("value"),
                "threshold": check.get("threshold"),
                "detail": check.get("detail", ""),
            }
            for check in checks
        ],
        "version": None if version is None else {"id": version.pk, "name": version.name},
    }


def _outcome(check: dict) -> str:
    """passed, failed or not applicable (a check that had nothing to judge)."""
    if not check.get("applicable", True):
        return "not applicable"
    return "passed" if check["passed"] else "failed"


def _recent_runs() -> list[TrainingRun]:
    return list(TrainingRun.objects.select_related("version").order_by("-created_at")[:RECENT_RUNS])


def _iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _display(moment: datetime.datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"
