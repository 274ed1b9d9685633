"""Knobs for the training jobs, as dataclasses with defaults that work on a CPU.

The defaults are written here and nowhere else; the app sets any scalar field
from the environment as ``TRAINING_`` (online RL: ``TRAINING_RL_``) + its name
in capitals (training/knobs.py).

One shared base (steps, batch, learning rate, LoRA) and one subclass per
method. ``trainer_arguments`` turns the shared part into keyword arguments for
any TRL config: no hub, no checkpoints, a log line per step, bf16 only on a
GPU that supports it (TRL defaults to bf16, which fails or crawls on CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"

    def to_peft(self, task_type: str):
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.target_modules,
            task_type=task_type,
        )


@dataclass
class JobConfig:
    # 0: the data decides: num_train_epochs over the rows, at most max_steps_cap
    # steps. A fixed count > 0 wins, as in transformers (tests use a few steps).
    max_steps: int = 0
    num_train_epochs: float = 3.0
    max_steps_cap: int = 64
    # Training stops at the first step past this many seconds and keeps what it
    # learnt: a run has a time budget whatever the data (docs/training.md).
    max_train_seconds: float = 600.0
    batch_size: int = 4
    gradient_accumulation_steps: int = 1
    # LoRA learns at ~1e-4; TRL's 1e-6 default suits full fine-tuning only.
    learning_rate: float = 1e-4
    lr_scheduler_type: str = "linear"
    max_length: int = 512
    # Costs ~10% time on short rows but cuts peak memory by a third at ~240 tokens.
    gradient_checkpointing: bool = True
    seed: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)


@dataclass
class RewardJobConfig(JobConfig):
    center_rewards_coefficient: float | None = None


@dataclass
class ThumbsRewardJobConfig(RewardJobConfig):
    # Bradley–Terry over natural thumbs: the model's own replies, up to 512 tokens, as
    # whole conversations on both sides. Cut and trained as KTO is (one epoch, 256
    # tokens), so the run keeps its time budget (docs/training.md, "Thumbs alone").
    num_train_epochs: float = 1.0
    max_length: int = 256
    gradient_checkpointing: bool = False


@dataclass
class DPOJobConfig(JobConfig):
    beta: float = 0.1
    # TRL sums these losses with loss_weights. "sft" on the chosen reply keeps it
    # likely: DPO alone grows the margin by making both replies unlikely, and
    # greedy replies never showed what users preferred (docs/training.md).
    loss_type: tuple[str, ...] = ("sigmoid", "sft")
    loss_weights: tuple[float, ...] | None = (1.0, 1.0)
    # Measured on SmolLM2 with LoRA r16: 1e-4 for 16 steps left greedy replies
    # unchanged; 3e-4 for 3 epochs made them carry the trait (docs/training.md).
    learning_rate: float = 3e-4


@dataclass
class KTOJobConfig(JobConfig):
    beta: float = 0.1
    # As for DPO: 1e-4 for 3 epochs left greedy replies without the trait; 3e-4 made
    # 19 of 20 carry it (benchmarks/recipes.py, docs/training.md).
    learning_rate: float = 3e-4
    # Natural thumbs (the model's own replies, up to 512 tokens): one epoch of the
    # anchored loss moved greedy replies as far as three, in a third of the time, and
    # rows cut at 256 tokens keep a reply's opening, where its kind shows. A prompt
    # longer than max_length drops its row (TRL). docs/training.md, "Thumbs alone".
    num_train_epochs: float = 1.0
    max_length: int = 256
    gradient_checkpointing: bool = False
    # Weight the rarer label up so both labels pull equally (TRL wants the
    # weighted desirable:undesirable ratio within [1, 4/3]).
    balance_labels: bool = True
    # The up-rated replies' NLL per token, added to the KTO loss with this weight
    # (0: plain KTO). An anchor, as DPO's "sft" loss is (docs/training.md).
    sft_weight: float = 1.0
    # "reply": each up-rated reply's mean token NLL counts once; "token": every token
    # counts once, so long replies dominate (docs/training.md, "20% flipped").
    anchor_per: Literal["reply", "token"] = "reply"


@dataclass
class OnlineRLJobConfig(JobConfig):
    algorithm: Literal["rloo", "grpo"] = "rloo"
    max_steps: int = 8
    # Completions per step; a multiple of num_generations (whole prompt groups).
    batch_size: int = 4
    num_generations: int = 4
    max_completion_length: int = 48
    temperature: float = 1.0
    # A KL leash: without it GRPO broke SmolLM2 against a small reward model in 24 steps.
    # From the DPO+SFT policy, lr 1e-4 with beta 0.05 lowered the reward of held-out
    # greedy replies (0.88 -> 0.82); 3e-5 with beta 0.1 kept it (docs/training.md).
    beta: float = 0.1
    learning_rate: float = 3e-5
    # Replies cut off at max_completion_length teach nothing about how to end one.
    mask_truncated_completions: bool = True
    # Broken replies (loops, empty, leaked markup) score lowest whatever the reward
    # model says (llm/training/guarded_reward.py). Off only to measure what it prevents.
    guard_rewards: bool = True


def cuda_available() -> bool:
    return torch.cuda.is_available()


def training_device() -> str:
    return "cuda" if cuda_available() else "cpu"


def use_bf16() -> bool:
    return cuda_available() and torch.cuda.is_bf16_supported()


def model_dtype() -> torch.dtype:
    return torch.bfloat16 if use_bf16() else torch.float32


def planned_steps(config: JobConfig, rows: int) -> int:
    """``max_steps`` if set, else epochs over ``rows`` in optimizer steps, capped."""
    if config.max_steps > 0:
        return config.max_steps
    per_step = config.batch_size * config.gradient_accumulation_steps
    return max(1, min(config.max_steps_cap, math.ceil(config.num_train_epochs * rows / per_step)))


def trainer_arguments(config: JobConfig, scratch_dir: Path, rows: int = 0) -> dict[str, Any]:
    """Keyword arguments shared by every TRL config this package builds.

    ``rows`` is the training set's size, which sets the steps unless ``max_steps`` does.
    """
    return {
        "output_dir": str(scratch_dir),
        "max_steps": planned_steps(config, rows),
        "num_train_epochs": config.num_train_epochs,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler_type,
        # transformers 5 renamed gradient checkpointing; the old name only warns.
        "activation_checkpointing": config.gradient_checkpointing,
        "seed": config.seed,
        "data_seed": config.seed,
        "bf16": use_bf16(),
        "fp16": False,
        "use_cpu": not cuda_available(),
        "logging_steps": 1,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "push_to_hub": False,
        "disable_tqdm": True,
    }
