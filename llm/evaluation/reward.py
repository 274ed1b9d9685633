"""Does a reward model rank held-out pairs the way people did?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

import torch

from llm.evaluation.report import RewardModelReport
from llm.evaluation.thresholds import RewardModelThresholds
from llm.training.config import training_device
from llm.training.models import load_reward_model
from llm.training.versions import resolve_reward_model


def evaluate_reward_model(
    reward_dir: str | Path,
    heldout_pairs: Sequence[Mapping[str, Any]],
    *,
    thresholds: RewardModelThresholds | None = None,
    batch_size: int = 8,
) -> RewardModelReport:
    """Pairwise accuracy (chosen scored above rejected) on held-out pairs."""
    thresholds = thresholds or RewardModelThresholds()
    model, tokenizer = load_reward_model(resolve_reward_model(reward_dir)[0])
    device = torch.device(training_device())
    model.to(device).eval()
    chosen = _scores(model, tokenizer, device, heldout_pairs, "chosen", batch_size)
    rejected = _scores(model, tokenizer, device, heldout_pairs, "rejected", batch_size)
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


@torch.no_grad()
def _scores(model, tokenizer, device, pairs, key: str, batch_size: int) -> list[float]:
    """Scores of prompt + completion, tokenized as TRL's RewardTrainer does."""
    sequences = [
        list(
            tokenizer.apply_chat_template(
                list(pair["prompt"]) + list(pair[key]), tokenize=True, return_dict=True
            )["input_ids"]
        )
        for pair in pairs
    ]
    scores: list[float] = []
    pad = tokenizer.pad_token_id
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        width = max(len(ids) for ids in batch)
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in batch])
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in batch])
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        scores.extend(logits[:, 0].float().tolist())
    return scores
