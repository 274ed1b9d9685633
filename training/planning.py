"""What the approved feedback supports, read before anything trains.

The pipeline trains on exactly what ``feedback_collect`` returns, split by
``feedback_split``; Train now, the tick and the dashboard state ``run_plan``
from the same two, so what they announce is what the run does.

A derived pair's two thumbs, and the thumbs-down under a reply the user
rewrote (a ``written`` pair), count once: as the pair, not again as lone thumbs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from feedback.exports import pair_rows, pairs_for_training, ratings_for_training, unpaired_row
from llm.evaluation.thresholds import GateThresholds
from llm.training.datasets import split_by_conversation
from llm.training.plan import FeedbackCounts, MethodPlan, PlanLimits, plan_run
from training.models import TrainingRun

# Pairs made from the user's own thumbs: their thumbs are not counted again.
_FROM_THUMBS = ("derived", "written")


@dataclass
class Feedback:
    pairs: list[dict]
    unpaired: list[dict]
    rating_ids: list[int]
    pair_ids: list[int]


@dataclass
class Split:
    train_pairs: list[dict]
    heldout_pairs: list[dict]
    train_unpaired: list[dict]
    heldout_unpaired: list[dict]

    def counts(self) -> FeedbackCounts:
        return FeedbackCounts(
            train_pairs=len(self.train_pairs),
            heldout_pairs=len(self.heldout_pairs),
            train_up=sum(1 for row in self.train_unpaired if row["label"]),
            train_down=sum(1 for row in self.train_unpaired if not row["label"]),
            heldout_up=sum(1 for row in self.heldout_unpaired if row["label"]),
            heldout_down=sum(1 for row in self.heldout_unpaired if not row["label"]),
        )


def feedback_collect() -> Feedback:
    """Rows and their ids from one read, so the recorded lineage is exactly what trained."""
    pairs = list(pairs_for_training())
    in_pairs = {
        message_id
        for pair in pairs
        if pair.source in _FROM_THUMBS
        for message_id in (pair.chosen_id, pair.rejected_id)
    }
    ratings = [rating for rating in ratings_for_training() if rating.message_id not in in_pairs]
    return Feedback(
        pairs=list(pair_rows(pairs)),
        unpaired=[unpaired_row(rating) for rating in ratings],
        rating_ids=[rating.pk for rating in ratings],
        pair_ids=[pair.pk for pair in pairs],
    )


def feedback_split(feedback: Feedback) -> Split:
    """Train and held-out rows: whole conversations on one side, pairs and thumbs alike."""
    rows = [*feedback.pairs, *feedback.unpaired]
    _, heldout = split_by_conversation(rows, settings.TRAINING_EVAL_FRACTION, seed=0)
    heldout_ids = {str(row["conversation_id"]) for row in heldout}

    def held(row: dict) -> bool:
        return str(row["conversation_id"]) in heldout_ids

    return Split(
        train_pairs=[row for row in feedback.pairs if not held(row)],
        heldout_pairs=[row for row in feedback.pairs if held(row)],
        train_unpaired=[row for row in feedback.unpaired if not held(row)],
        heldout_unpaired=[row for row in feedback.unpaired if held(row)],
    )


def run_plan(split: Split | None = None, *, rl_reward_model: bool | None = None) -> MethodPlan:
    """The plan for the approved feedback now (or ``split``), with its reason or refusal.

    ``rl_reward_model``: whether a reward model fit for online RL passed (None: look
    it up). Only one learnt from pairs is: RL against a reward model from thumbs was
    not measured (docs/training.md), so that one judges replies in the gate only.
    """
    split = split or feedback_split(feedback_collect())
    limits = PlanLimits(
        min_examples=settings.TRAINING_MIN_EXAMPLES,
        min_reward_pairs=settings.TRAINING_MIN_REWARD_PAIRS,
        min_heldout_thumbs_per_label=_gate_knob("min_heldout_thumbs_per_label"),
    )
    try:
        return plan_run(
            split.counts(),
            reward_model_passed=rl_reward_model
            if rl_reward_model is not None
            else latest_passed_reward_model(learnt_from="pairs") is not None,
            method=settings.TRAINING_METHOD or None,
            limits=limits,
        )
    except ValueError as error:  # a TRAINING_METHOD the data cannot feed
        return MethodPlan((), str(error), refusal=f"{error}.")


def latest_passed_reward_model(*, learnt_from: str | None = None) -> str | None:
    """The newest reward model that passed its own held-out evaluation, if still on disk.

    ``learnt_from``: "pairs" or "thumbs" to ask for one kind (runs before reward models
    from thumbs existed recorded none: theirs came from pairs).
    """
    for metrics in TrainingRun.objects.filter(metrics__has_key="reward_model").values_list(
        "metrics", flat=True
    ):
        reward = metrics["reward_model"]
        kind = reward.get("from", "pairs")
        if learnt_from not in (None, kind):
            continue
        if reward.get("passed") and Path(reward["path"]).exists():
            return reward["path"]
    return None


def _gate_knob(name: str) -> int:
    value = settings.GATE_KNOBS.get(name, getattr(GateThresholds, name))
    return int(value)
