"""DPO with LoRA on preference pairs, from the base model or a parent adapter."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from llm.training.config import DPOJobConfig, trainer_arguments
from llm.training.datasets import PREFERENCE_COLUMNS, canonical_order, to_trl_dataset
from llm.training.models import load_policy, load_tokenizer
from llm.training.progress import ProgressFn, StopFn
from llm.training.runner import JobSpec, run_job
from llm.training.versions import ADAPTER_DIR, TrainedVersion, resolve_adapter


def train_dpo(
    *,
    base_model: str | Path,
    pairs: Sequence[dict],
    output_dir: str | Path,
    heldout_pairs: Sequence[dict] = (),
    parent: str | Path | None = None,
    config: DPOJobConfig | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> TrainedVersion:
    """Train a DPO adapter on ``pairs`` and write it as the version ``output_dir``.

    ``parent`` (a version directory or adapter folder) continues that adapter,
    with a frozen copy of it as the reference; without one, LoRA starts fresh on
    the base and the reference is the base with the adapter switched off.
    """
    from trl import DPOConfig, DPOTrainer

    config = config or DPOJobConfig()
    parent_adapter, parent_name = resolve_adapter(parent) if parent else (None, None)
    rows = canonical_order(pairs)

    def build(scratch: Path, callbacks):
        args = DPOConfig(
            **trainer_arguments(config, scratch, len(rows)),
            beta=config.beta,
            loss_type=list(config.loss_type),
            loss_weights=None if config.loss_weights is None else list(config.loss_weights),
            max_length=config.max_length,
        )
        return DPOTrainer(
            model=load_policy(base_model, parent_adapter),
            args=args,
            train_dataset=to_trl_dataset(rows, PREFERENCE_COLUMNS),
            processing_class=load_tokenizer(base_model),
            peft_config=None if parent_adapter else config.lora.to_peft("CAUSAL_LM"),
            callbacks=callbacks,
        )

    spec = JobSpec("dpo", ADAPTER_DIR, Path(base_model), config, rows, heldout_pairs, parent_name)
    return run_job(spec, output_dir, build, save_adapter, progress, should_stop)


def save_adapter(trainer, target: Path) -> None:
    """Only the trained adapter: TRL adds a frozen "ref" copy when continuing a parent."""
    trainer.model.save_pretrained(str(target), selected_adapters=["default"])
