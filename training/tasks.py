"""Celery side of retraining: beat's tick decides, the training queue trains."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from chat.refusals import Refusal
from training import arena, runs, selectors
from training.models import TrainingRun

logger = logging.getLogger(__name__)


@shared_task(name="training.tick")
def tick() -> str:
    """Start a run when enough new approved feedback arrived; never two at once."""
    failed = runs.stale_runs_fail()
    if failed:
        logger.warning("marked %s training run(s) failed: no heartbeat", failed)
    for version in arena.held_candidates_decide():
        logger.info("arena decided %s: %s", version.name, version.status)
    if selectors.run_in_flight() is not None:
        return "a run is in flight"
    new = selectors.new_feedback_count()
    if new < settings.TRAINING_MIN_NEW_FEEDBACK:
        return f"{new} new approved feedback rows; waiting for {settings.TRAINING_MIN_NEW_FEEDBACK}"
    try:
        run = training_run_queue(trigger="schedule")
    except Refusal as refusal:
        return refusal.message
    return f"queued run {run.pk}: {run.metrics.get('plan', '')}"


def training_run_queue(*, trigger: str) -> TrainingRun:
    """Queue a run on the training queue (once committed), its plan stated as its reason.

    Refused while one is in flight, and when the approved feedback cannot make a
    run that passes (the plan says why and what is missing): minutes of training
    that the gate would reject are not spent. Staff's "Train now" comes here too:
    it trains on whatever approved feedback exists, without waiting for
    ``TRAINING_MIN_NEW_FEEDBACK``.
    """
    # Imported here: planning reads the gate's thresholds, whose package loads torch;
    # the tick comes here only when enough new feedback arrived.
    from training import planning

    if selectors.run_in_flight() is not None:
        raise _busy()
    plan = planning.run_plan()
    if not plan.runnable:
        raise Refusal("cannot_pass", f"Not started: {plan.statement}")
    run = runs.training_run_create(trigger=trigger, plan=plan.statement)
    if run is None:
        raise _busy()
    transaction.on_commit(lambda: run_training.delay(run.pk))
    return run


def _busy() -> Refusal:
    busy = selectors.run_in_flight()
    where = f"run {busy.pk} is {busy.status}" if busy else "a run is in flight"
    stage = (
        f" ({busy.stage}, step {busy.step} of {busy.total_steps})" if busy and busy.stage else ""
    )
    return Refusal("run_in_flight", f"Not now: {where}{stage}. One run at a time.")


# Time limits: CELERY_TASK_ANNOTATIONS in settings. A killed worker is not
# retried: the tick finds the run's heartbeat stopped and fails it.
@shared_task(name="training.run")
def run_training(run_id: int) -> str:
    # Imported here, not at the top: the pipeline loads torch and TRL, which beat
    # and the default worker (they import this module for tick) need not hold.
    from training import pipeline

    run = pipeline.training_run_execute(run_id=run_id)
    return f"run {run.pk}: {run.status}"
