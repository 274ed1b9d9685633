"""Does a reward model rank held-out pairs the way people did?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from llm.evaluation.report import RewardModelReport
from llm.evaluation.thresholds import RewardModelThresholds
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
