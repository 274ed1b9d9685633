"""Reads for the retraining loop."""

from __future__ import annotations

from itertools import takewhile

from django.conf import settings

from feedback.exports import pairs_for_training, ratings_for_training
from training.models import TrainingRun


def run_in_flight() -> TrainingRun | None:
    return TrainingRun.objects.filter(in_flight=True).first()


def new_feedback_count() -> int:
    """Approved, trainable ratings and pairs changed since the last run that counts.

    A failed run (its worker killed, a crash) does not count: its feedback stays new,
    so the next tick retries it, up to ``TRAINING_MAX_RETRIES`` times in a row. After
    that only feedback newer than the latest failure counts, so a run that keeps
    failing cannot loop.
    """
    retries = settings.TRAINING_MAX_RETRIES
    recent = list(TrainingRun.objects.order_by("-created_at")[: retries + 2])
    failures = list(takewhile(lambda run: run.status == TrainingRun.Status.FAILED, recent))
    if len(failures) > retries:
        last = failures[0]
    else:
        last = recent[len(failures)] if len(recent) > len(failures) else None
    ratings, pairs = ratings_for_training(), pairs_for_training()
    if last is not None:
        ratings = ratings.filter(updated_at__gt=last.created_at)
        pairs = pairs.filter(updated_at__gt=last.created_at)
    return len(ratings) + len(pairs)
