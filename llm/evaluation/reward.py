"""Does a reward model rank held-out feedback the way people did?

On pairs: the share of pairs whose chosen reply it scores higher. On thumbs: the
share of (up-rated, down-rated) combinations it ranks right (the AUC), which must
also be unlikely under labels that mean nothing (llm/evaluation/thumbs.ranking).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from llm.evaluation.report import RewardModelReport
from llm.evaluation.thresholds import RewardModelThresholds
from llm.evaluation.thumbs import ranking
from llm.training.models import RewardScorer


def evaluate_reward_model(
    reward_dir: str | Path,
    heldout_pairs: Sequence[Mapping[str, Any]],
    *,
    thresholds: RewardModelThresholds | None = None,
    batch_size: int = 8,
) -> RewardModelReport:
    """Pairwise accuracy (chosen scored above rejected) on held-out pairs."""
    thresholds = thresholds or RewardModelThresholds()
    scorer = RewardScorer(reward_dir, batch_size=batch_size)
    chosen = scorer.scores([list(p["prompt"]) + list(p["chosen"]) for p in heldout_pairs])
    rejected = scorer.scores([list(p["prompt"]) + list(p["rejected"]) for p in heldout_pairs])
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    accuracy = fmean(margin > 0 for margin in margins) if margins else None
    passed = (
        accuracy is not None
        and len(margins) >= thresholds.min_reward_pairs
        and accuracy >= thresholds.min_reward_accuracy
    )
    return RewardModelReport(
        passed=passed,
        accuracy=accuracy,
        mean_margin=fmean(margins) if margins else None,
        pairs=len(margins),
        min_accuracy=thresholds.min_reward_accuracy,
    )


def evaluate_thumbs_reward_model(
    reward_dir: str | Path,
    heldout_thumbs: Sequence[Mapping[str, Any]],
    *,
    thresholds: RewardModelThresholds | None = None,
    batch_size: int = 8,
) -> RewardModelReport:
    """AUC of the reward model's scores on held-out thumbs, up-rated against down-rated."""
    thresholds = thresholds or RewardModelThresholds()
    scorer = RewardScorer(reward_dir, batch_size=batch_size)
    scores = scorer.scores([list(r["prompt"]) + list(r["completion"]) for r in heldout_thumbs])
    ups = [s for s, r in zip(scores, heldout_thumbs, strict=True) if r["label"]]
    downs = [s for s, r in zip(scores, heldout_thumbs, strict=True) if not r["label"]]
    if not ups or not downs:
        return RewardModelReport(False, None, None, 0, thresholds.min_reward_accuracy)
    accuracy, p_value = ranking(ups, downs)
    combinations = len(ups) * len(downs)
    passed = (
        combinations >= thresholds.min_reward_pairs
        and accuracy >= thresholds.min_reward_accuracy
        and p_value <= thresholds.max_p_value
    )
    return RewardModelReport(
        passed=passed,
        accuracy=accuracy,
        mean_margin=fmean(ups) - fmean(downs),
        pairs=combinations,
        min_accuracy=thresholds.min_reward_accuracy,
    )
