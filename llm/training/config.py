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
    # max_steps > 0 wins over num_train_epochs, as in transformers.
    max_steps: int = 16
    num_train_epochs: float = 1.0
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
class DPOJobConfig(JobConfig):
    beta: float = 0.1
    loss_type: str = "sigmoid"


@dataclass
class KTOJobConfig(JobConfig):
    beta: float = 0.1
    # Weight the rarer label up so both labels pull equally (TRL wants the
    # weighted desirable:undesirable ratio within [1, 4/3]).
    balance_labels: bool = True


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
    beta: float = 0.05


def cuda_available() -> bool:
    return torch.cuda.is_available()


def training_device() -> str:
    return "cuda" if cuda_available() else "cpu"


def use_bf16() -> bool:
    return cuda_available() and torch.cuda.is_bf16_supported()


def model_dtype() -> torch.dtype:
    return torch.bfloat16 if use_bf16() else torch.float32


def trainer_arguments(config: JobConfig, scratch_dir: Path) -> dict[str, Any]:
    """Keyword arguments shared by every TRL config this package builds."""
    return {
        "output_dir": str(scratch_dir),
        "max_steps": config.max_steps,
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
