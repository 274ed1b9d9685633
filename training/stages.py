"""The training stages a run can chain, as a table: name → config class and job.

Every stage reads the run's typed ``TrainingData`` and continues from
``parent`` (the previous stage's output, or the version in service).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llm.training import (
    DPOJobConfig,
    JobConfig,
    KTOJobConfig,
    OnlineRLJobConfig,
    pairs_to_unpaired,
    train_dpo,
    train_kto,
    train_online_rl,
)
from llm.training.progress import ProgressFn, StopFn


@dataclass(frozen=True)
class TrainingData:
    """What a run trains on, split by conversation, and the reward model RL may use."""

    train_pairs: list[dict]
    train_unpaired: list[dict]
    heldout_pairs: list[dict]
    reward_model: str | None = None
    heldout_unpaired: list[dict] = field(default_factory=list)
    # KTO also trains on the pairs (each an up and a down) unless DPO trains on them.
    kto_takes_pairs: bool = True
    # The reward model the gate scores generated replies with (from pairs or thumbs).
    judge_reward_model: str | None = None


@dataclass(frozen=True)
class StageJob:
    """One stage's inputs: where to start from, what to train on, where to write."""

    base_model: str
    parent: str | None
    data: TrainingData
    output_dir: Path
    config: JobConfig
    progress: ProgressFn
    should_stop: StopFn


@dataclass(frozen=True)
class Stage:
    config_class: type[JobConfig]
    train: Callable[[StageJob], object]


def _dpo(job: StageJob) -> object:
    return train_dpo(
        pairs=job.data.train_pairs, heldout_pairs=job.data.heldout_pairs, **_common(job)
    )


def _kto(job: StageJob) -> object:
    pairs = pairs_to_unpaired(job.data.train_pairs) if job.data.kto_takes_pairs else []
    return train_kto(rows=[*job.data.train_unpaired, *pairs], **_common(job))


def _online_rl(job: StageJob) -> object:
    rows = job.data.train_pairs + job.data.train_unpaired
    return train_online_rl(
        reward_model=job.data.reward_model, prompts=[row["prompt"] for row in rows], **_common(job)
    )


_COMMON = ("base_model", "output_dir", "parent", "config", "progress", "should_stop")


def _common(job: StageJob) -> dict:
    """The keyword arguments every TRL job of llm.training takes alike."""
    return {name: getattr(job, name) for name in _COMMON}


STAGES: dict[str, Stage] = {
    "dpo": Stage(DPOJobConfig, _dpo),
    "kto": Stage(KTOJobConfig, _kto),
    "online_rl": Stage(OnlineRLJobConfig, _online_rl),
}
