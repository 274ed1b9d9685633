"""A training run's life outside the training itself: queue, finish, clean up, fail stale.

Light on purpose: beat's tick uses these, and must not load torch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from training.models import TrainingRun


def training_run_create(*, trigger: str = "schedule", plan: str = "") -> TrainingRun | None:
    """Queue a run, or None when one is already in flight (the lock is a unique row).

    ``plan`` is what the feedback supports, in words; the run shows it until it ends.
    """
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(
                trigger=trigger, metrics={"plan": plan} if plan else {}
            )
    except IntegrityError:
        return None


def training_run_finish(
    run: TrainingRun, status: str, *, reason: str = "", error: str = ""
) -> None:
    run.status, run.reason, run.error = status, reason, error
    # What the run is doing is now its verdict, not the last stage it was in.
    run.stage = status
    run.finished_at, run.in_flight = timezone.now(), None
    run.save()


def stale_runs_fail() -> int:
    """Runs whose worker stopped beating (killed) end failed; their files are removed."""
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT)
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    count = 0
    for run in stale:
        run_files_remove(run)
        training_run_finish(
            run,
            TrainingRun.Status.FAILED,
            error=f"The worker stopped (no heartbeat since {run.heartbeat_at:%H:%M:%S}).",
        )
        count += 1
    return count


def stage_dir(run: TrainingRun, stage: str) -> Path:
    return Path(settings.MODEL_VERSIONS_DIR) / f"run-{run.pk}-{stage}"


def run_files_remove(run: TrainingRun) -> None:
    """The run's stage folders and any staging folder a killed job left behind."""
    root = Path(settings.MODEL_VERSIONS_DIR)
    for path in [*root.glob(f"run-{run.pk}-*"), *root.glob(f".run-{run.pk}-*")]:
        shutil.rmtree(path, ignore_errors=True)
