"""Which method to train with, given the feedback collected so far, and whether a run can pass.

Plain Python on counts: Train now, the tick and the dashboard state the plan
before anything trains, with the same words the run logs.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass

METHODS = ("dpo", "kto", "online_rl")
LABELS = {"dpo": "DPO", "kto": "KTO", "online_rl": "online RL"}


@dataclass(frozen=True)
class MethodPlan:
    stages: tuple[str, ...]  # run in order; each stage continues from the previous one
    reason: str
    # Enough feedback to (re)train the reward model that online RL and the gate would use.
    train_reward_model: bool = False
    # Set when a run cannot pass the gate: why, and what is missing. Nothing trains.
    refusal: str | None = None

    @property
    def empty(self) -> bool:
        return not self.stages

    @property
    def runnable(self) -> bool:
        return bool(self.stages) and self.refusal is None

    @property
    def statement(self) -> str:
        """The plan in one sentence, as Train now, the tick and the dashboard say it."""
        return self.refusal or self.reason


@dataclass(frozen=True)
class FeedbackCounts:
    """Approved feedback after the split by conversation, derived pairs' thumbs counted once."""

    train_pairs: int = 0
    heldout_pairs: int = 0
    train_up: int = 0
    train_down: int = 0
    heldout_up: int = 0
    heldout_down: int = 0

    @property
    def train_thumbs(self) -> int:
        return self.train_up + self.train_down

    @property
    def heldout_thumbs(self) -> int:
        return self.heldout_up + self.heldout_down

    @property
    def thumbs(self) -> int:
        return self.train_thumbs + self.heldout_thumbs

    @property
    def pairs(self) -> int:
        return self.train_pairs + self.heldout_pairs


@dataclass(frozen=True)
class PlanLimits:
    min_examples: int = 8
    min_reward_pairs: int = 32
    # A reward model from thumbs needs this many of each label to train on.
    min_reward_thumbs_per_label: int = 8
    # The gate judges held-out thumbs only with at least this many of each label
    # (GateThresholds.min_heldout_thumbs_per_label).
    min_heldout_thumbs_per_label: int = 2


def plan_run(
    counts: FeedbackCounts,
    *,
    reward_model_passed: bool,
    method: str | None = None,
    limits: PlanLimits | None = None,
) -> MethodPlan:
    """The stages for this feedback, the reason in words, and a refusal if no run can pass.

    A run can pass only if something held out can judge it: a held-out pair, or
    enough up- and down-rated held-out thumbs. Without, training would spend
    minutes to be rejected, so the plan refuses and says what is missing.
    """
    limits = limits or PlanLimits()
    stages = choose_method(
        counts.train_pairs,
        counts.train_thumbs,
        reward_model_passed,
        method=method,
        min_examples=limits.min_examples,
        min_reward_pairs=limits.min_reward_pairs,
    )
    # A reward model from pairs counts them all (its held-out pairs judge it) and needs some held out.
    from_pairs = counts.pairs >= limits.min_reward_pairs and counts.heldout_pairs > 0
    judged = _judged_on(counts, limits)
    summary = f"{_thumbs(counts.thumbs)}, {_pairs(counts.pairs)}"
    if stages.empty:
        return MethodPlan((), f"{summary}: {stages.reason}", refusal=f"{summary}: {stages.reason}")
    methods = " then ".join(LABELS[stage] for stage in stages.stages)
    reason = f"{summary}: {methods} ({stages.reason}); judged on {judged or 'nothing'}"
    train_reward = from_pairs or _thumbs_reward_model(counts, limits)
    refusal = None if judged else _missing(counts, limits, summary)
    return MethodPlan(stages.stages, reason, train_reward, refusal)


def _judged_on(counts: FeedbackCounts, limits: PlanLimits) -> str:
    parts = []
    if counts.heldout_pairs:
        parts.append(_pairs(counts.heldout_pairs, "held-out"))
    if min(counts.heldout_up, counts.heldout_down) >= limits.min_heldout_thumbs_per_label:
        parts.append(
            f"{_thumbs(counts.heldout_thumbs, 'held-out')} "
            f"({counts.heldout_up} up, {counts.heldout_down} down)"
        )
    return " and ".join(parts)


def _missing(counts: FeedbackCounts, limits: PlanLimits, summary: str) -> str:
    need = limits.min_heldout_thumbs_per_label
    return (
        f"{summary}: no run can pass yet. The gate judges a new version on feedback from "
        f"conversations it did not train on, and none can judge: "
        f"{_pairs(counts.heldout_pairs, 'held-out')}, "
        f"{counts.heldout_up} up- and {counts.heldout_down} down-rated held-out thumbs "
        f"(it needs a held-out pair, or {need} up- and {need} down-rated). "
        f"Rate more replies, up and down, in more conversations."
    )


def _thumbs_reward_model(counts: FeedbackCounts, limits: PlanLimits) -> bool:
    enough = min(counts.train_up, counts.train_down) >= limits.min_reward_thumbs_per_label
    judged = min(counts.heldout_up, counts.heldout_down) >= limits.min_heldout_thumbs_per_label
    return enough and judged


def _thumbs(count: int, kind: str = "") -> str:
    return f"{count} {kind + ' ' if kind else ''}thumb{'s' if count != 1 else ''}"


def _pairs(count: int, kind: str = "") -> str:
    return f"{count} {kind + ' ' if kind else ''}pair{'s' if count != 1 else ''}"


def choose_method(
    pairs: Sized | int,
    unpaired: Sized | int,
    reward_model_passed: bool,
    *,
    method: str | None = None,
    min_examples: int = 8,
    min_reward_pairs: int = 32,
) -> MethodPlan:
    """The training stages: DPO on pairs, KTO when lone thumbs dominate, then online RL.

    Counts or collections are accepted; ``unpaired`` counts lone thumbs only (a
    derived pair's two thumbs count as the pair). A pair holds an up and a down,
    so KTO is chosen when lone thumbs outnumber what the pairs hold; KTO then
    trains on the thumbs and on the pairs unrolled. Pairs with many lone thumbs
    beside them train DPO, then KTO on the thumbs. ``method`` forces one stage.
    """
    pair_count = pairs if isinstance(pairs, int) else len(pairs)
    unpaired_count = unpaired if isinstance(unpaired, int) else len(unpaired)
    refresh_reward = pair_count >= min_reward_pairs
    if method is not None:
        return _explicit(method, pair_count, unpaired_count, reward_model_passed, refresh_reward)
    stages: list[str] = []
    if unpaired_count > 2 * pair_count and unpaired_count + 2 * pair_count >= min_examples:
        stages.append("kto")
        reason = f"{unpaired_count} lone thumbs outweigh {pair_count} pairs"
    elif pair_count >= min_examples // 2:
        stages.append("dpo")
        reason = f"{pair_count} preference pairs"
        if unpaired_count >= min_examples:
            stages.append("kto")
            reason += f", then {unpaired_count} lone thumbs"
    else:
        reason = f"too little feedback to train ({pair_count} pairs, {unpaired_count} thumbs)"
    if reward_model_passed and stages:
        stages.append("online_rl")
        reason += "; a reward model passed its evaluation"
    return MethodPlan(tuple(stages), reason, refresh_reward)


def _explicit(
    method: str, pair_count: int, unpaired_count: int, reward_passed: bool, refresh: bool
) -> MethodPlan:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if method == "dpo" and not pair_count:
        raise ValueError("DPO needs preference pairs")
    if method == "kto" and not (pair_count or unpaired_count):
        raise ValueError("KTO needs rated replies")
    if method == "online_rl" and not reward_passed:
        raise ValueError("online RL needs a reward model that passed its evaluation")
    return MethodPlan((method,), f"{method} requested", refresh)
