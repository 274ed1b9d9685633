"""Reads for the retraining loop."""

from __future__ import annotations

from feedback.exports import pairs_for_training, ratings_for_training
from training.models import TrainingRun


def run_in_flight() -> TrainingRun | None:
    return TrainingRun.objects.filter(in_flight=True).first()


def new_feedback_count() -> int:
    """Approved, trainable ratings and pairs changed since the last run was created."""
    last = TrainingRun.objects.order_by("-created_at").first()
    ratings, pairs = ratings_for_training(), pairs_for_training()
    if last is not None:
        ratings = ratings.filter(updated_at__gt=last.created_at)
        pairs = pairs.filter(updated_at__gt=last.created_at)
    return len(ratings) + len(pairs)
