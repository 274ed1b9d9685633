"""Which method to train with, given the feedback collected so far."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass

METHODS = ("dpo", "kto", "online_rl")


@dataclass(frozen=True)
class MethodPlan:
    stages: tuple[str, ...]  # run in order; each stage continues from the previous one
    reason: str
    # Enough pairs to (re)train the reward model that online RL would need.
    train_reward_model: bool = False

    @property
    def empty(self) -> bool:
        return not self.stages


def choose_method(
    pairs: Sized | int,
    unpaired: Sized | int,
    reward_model_passed: bool,
    *,
    method: str | None = None,
    min_examples: int = 8,
    min_reward_pairs: int = 32,
) -> MethodPlan:
    """The training plan: DPO on pairs, KTO when unpaired thumbs dominate, then online RL.

    Counts or collections are accepted. Pairs count twice as unpaired rows (a
    pair is a thumbs-up and a thumbs-down), so KTO is chosen when lone thumbs
    outnumber what the pairs hold. ``method`` forces a single stage.
    """
    pair_count = pairs if isinstance(pairs, int) else len(pairs)
    unpaired_count = unpaired if isinstance(unpaired, int) else len(unpaired)
    refresh_reward = pair_count >= min_reward_pairs
    if method is not None:
        return _explicit(method, pair_count, unpaired_count, reward_model_passed, refresh_reward)
    stages: list[str] = []
    if unpaired_count > 2 * pair_count and unpaired_count + 2 * pair_count >= min_examples:
        stages.append("kto")
        reason = f"{unpaired_count} unpaired ratings outweigh {pair_count} pairs"
    elif pair_count >= min_examples // 2:
        stages.append("dpo")
        reason = f"{pair_count} preference pairs"
    else:
        reason = f"too little feedback ({pair_count} pairs, {unpaired_count} ratings)"
    if reward_model_passed:
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
