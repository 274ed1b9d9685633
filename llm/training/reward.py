"""A reward model: the chat model's body with a scoring head, trained on pairs.

LoRA keeps training cheap; the adapter is merged before saving because the
online RL trainers set up a reward model's tokenizer only for a plain model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
    """Train a reward model on ``pairs``; write it merged as ``<output_dir>/reward_model``."""
    from trl import RewardConfig, RewardTrainer

    config = config or RewardJobConfig()
    rows = canonical_order(pairs)
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
            train_dataset=to_trl_dataset(rows, PREFERENCE_COLUMNS),
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
