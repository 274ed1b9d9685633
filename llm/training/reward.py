"""A reward model: the chat model's body with a scoring head, trained on pairs or thumbs.

LoRA keeps training cheap; the adapter is merged before saving because the
online RL trainers set up a reward model's tokenizer only for a plain model.

From thumbs alone it is Bradley–Terry over thumbs (``thumb_comparisons``): every
up-rated reply should score above every down-rated one, so each comparison is
one up-rated and one down-rated conversation, whole (TRL's implicit-prompt
preference rows). Replies to the same prompt are compared first.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llm.training.config import RewardJobConfig, trainer_arguments
from llm.training.datasets import PREFERENCE_COLUMNS, canonical_order, to_trl_dataset
from llm.training.models import load_reward_backbone, load_tokenizer
from llm.training.progress import ProgressFn, StopFn
from llm.training.runner import JobSpec, run_job
from llm.training.versions import REWARD_MODEL_DIR, TrainedVersion


def train_reward_model(
    *,
    base_model: str | Path,
    pairs: Sequence[dict],
    output_dir: str | Path,
    heldout_pairs: Sequence[dict] = (),
    config: RewardJobConfig | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> TrainedVersion:
    """Train a reward model on ``pairs``; write it merged as ``<output_dir>/reward_model``.

    ``pairs`` are preference rows (``prompt``, ``chosen``, ``rejected``) or the
    implicit-prompt comparisons of ``thumb_comparisons`` (``chosen``, ``rejected``).
    """
    from trl import RewardConfig, RewardTrainer

    config = config or RewardJobConfig()
    rows = canonical_order(pairs)
    columns = PREFERENCE_COLUMNS if rows and "prompt" in rows[0] else IMPLICIT_COLUMNS
    tokenizer = load_tokenizer(base_model)

    def build(scratch: Path, callbacks):
        args = RewardConfig(
            **trainer_arguments(config, scratch, len(rows)),
            max_length=config.max_length,
            center_rewards_coefficient=config.center_rewards_coefficient,
        )
        return RewardTrainer(
            model=load_reward_backbone(base_model, tokenizer),
            args=args,
            train_dataset=to_trl_dataset(rows, columns),
            processing_class=tokenizer,
            peft_config=config.lora.to_peft("SEQ_CLS"),
            callbacks=callbacks,
        )

    def save(trainer, target: Path) -> None:
        merged = trainer.model.merge_and_unload()
        merged.save_pretrained(str(target))
        tokenizer.save_pretrained(str(target))

    spec = JobSpec("reward", REWARD_MODEL_DIR, Path(base_model), config, rows, heldout_pairs)
    return run_job(spec, output_dir, build, save, progress, should_stop)


IMPLICIT_COLUMNS = ("chosen", "rejected")


def thumb_comparisons(
    rows: Sequence[Mapping[str, Any]], *, per_thumb: int = 1, seed: int = 0
) -> list[dict]:
    """Bradley–Terry comparisons from unpaired thumbs: (up-rated ≻ down-rated) conversations.

    Every (up, down) couple under the same prompt first; then random couples
    across prompts until the larger label side has appeared ``per_thumb`` times
    per thumb. Empty without both labels.
    """
    ups = [row for row in rows if row["label"]]
    downs = [row for row in rows if not row["label"]]
    if not ups or not downs:
        return []
    couples = [(up, down) for up in ups for down in downs if up["prompt"] == down["prompt"]]
    rng = random.Random(seed)
    wanted = per_thumb * max(len(ups), len(downs))
    while len(couples) < wanted:
        couples.append((rng.choice(ups), rng.choice(downs)))
    return [_comparison(up, down) for up, down in couples]


def _comparison(up: Mapping[str, Any], down: Mapping[str, Any]) -> dict:
    return {
        "chosen": [*up["prompt"], *up["completion"]],
        "rejected": [*down["prompt"], *down["completion"]],
        "conversation_id": str(up["conversation_id"]),
    }
