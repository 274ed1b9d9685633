"""KTO with LoRA on unpaired thumbs up/down."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from llm.training.config import KTOJobConfig, trainer_arguments
from llm.training.datasets import UNPAIRED_COLUMNS, canonical_order, to_trl_dataset
from llm.training.dpo import save_adapter
from llm.training.models import load_policy, load_tokenizer
from llm.training.progress import ProgressFn, StopFn
from llm.training.runner import JobSpec, run_job
from llm.training.versions import ADAPTER_DIR, TrainedVersion, resolve_adapter


def train_kto(
    *,
    base_model: str | Path,
    rows: Sequence[dict],
    output_dir: str | Path,
    heldout_rows: Sequence[dict] = (),
    parent: str | Path | None = None,
    config: KTOJobConfig | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> TrainedVersion:
    """Train a KTO adapter on unpaired rows and write it as the version ``output_dir``."""
    from trl import KTOConfig, KTOTrainer

    config = config or KTOJobConfig()
    if config.batch_size < 2:
        raise ValueError("KTO needs batch_size >= 2 (its KL term pairs rows within a batch)")
    parent_adapter, parent_name = resolve_adapter(parent) if parent else (None, None)
    # KTO reads rows in order (its KL estimate pairs neighbours), so shuffle here.
    ordered = canonical_order(rows)
    random.Random(config.seed).shuffle(ordered)
    desirable_weight, undesirable_weight = label_weights(ordered, config.balance_labels)

    def build(scratch: Path, callbacks):
        args = KTOConfig(
            **trainer_arguments(config, scratch, len(ordered)),
            beta=config.beta,
            max_length=config.max_length,
            desirable_weight=desirable_weight,
            undesirable_weight=undesirable_weight,
        )
        return KTOTrainer(
            model=load_policy(base_model, parent_adapter),
            args=args,
            train_dataset=to_trl_dataset(ordered, UNPAIRED_COLUMNS),
            processing_class=load_tokenizer(base_model),
            peft_config=None if parent_adapter else config.lora.to_peft("CAUSAL_LM"),
            callbacks=callbacks,
        )

    spec = JobSpec("kto", ADAPTER_DIR, Path(base_model), config, ordered, heldout_rows, parent_name)
    return run_job(spec, output_dir, build, save_adapter, progress, should_stop)


def label_weights(rows: Sequence[dict], balance: bool) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight) that make both labels pull equally."""
    desirable = sum(1 for row in rows if row["label"])
    undesirable = len(rows) - desirable
    if not balance or desirable == 0 or undesirable == 0:
        return 1.0, 1.0
    if desirable >= undesirable:
        return 1.0, desirable / undesirable
    return undesirable / desirable, 1.0
