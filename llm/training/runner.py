"""The shared life of a training job: stage, train, save, explain, move into place."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from transformers import PrinterCallback, Trainer, TrainerCallback

from llm.training.config import JobConfig, training_device
from llm.training.datasets import dataset_hash
from llm.training.progress import (
    ProgressCallback,
    ProgressFn,
    StopFn,
    TrainingStopped,
    report,
)
from llm.training.versions import (
    TrainedVersion,
    VersionManifest,
    library_versions,
    staged_version_dir,
    write_manifest,
)

BuildTrainer = Callable[[Path, list[TrainerCallback]], Trainer]
SaveArtifact = Callable[[Trainer, Path], None]


@dataclass
class JobSpec:
    """What a job trains on and how its manifest describes it."""

    method: str
    artifact: str
    base_model: Path
    config: JobConfig
    train_rows: Sequence[Any]
    heldout_rows: Sequence[Any] = ()
    parent: str | None = None
    reward_model: str | None = None


def run_job(
    spec: JobSpec,
    output_dir: str | Path,
    build_trainer: BuildTrainer,
    save_artifact: SaveArtifact,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> TrainedVersion:
    """Train in a staging folder, save the artifact and manifest, then move into place.

    Raises ``TrainingStopped`` (leaving nothing behind) when ``should_stop`` fired.
    """
    callback = ProgressCallback(
        stage=spec.method,
        progress=progress,
        should_stop=should_stop,
        time_budget=spec.config.max_train_seconds,
    )
    started = time.perf_counter()
    with staged_version_dir(output_dir) as staging:
        report(progress, "loading")
        trainer = _prepared_trainer(build_trainer, staging / "scratch", callback, spec)
        train_started = time.perf_counter()
        result = trainer.train()
        train_seconds = time.perf_counter() - train_started
        state = trainer.state
        if callback.stopped:
            raise TrainingStopped(f"{spec.method} stopped at step {state.global_step}")
        report(progress, "saving", state.global_step, state.max_steps)
        save_artifact(trainer, staging / spec.artifact)
        shutil.rmtree(staging / "scratch", ignore_errors=True)
        manifest = _manifest(spec, Path(output_dir).name, callback, result.training_loss, state)
        manifest.timings = _timings(trainer, time.perf_counter() - started, train_seconds)
        write_manifest(staging, manifest)
    report(progress, "done", state.global_step, state.max_steps)
    return TrainedVersion(path=Path(output_dir), manifest=manifest)


def _prepared_trainer(
    build_trainer: BuildTrainer, scratch: Path, callback: ProgressCallback, spec: JobSpec
) -> Trainer:
    trainer = build_trainer(scratch, [callback])
    trainer.remove_callback(PrinterCallback)  # progress goes to ``progress``, not stdout
    if len(trainer.train_dataset) == 0:
        raise ValueError(f"no {spec.method} training rows fit max_length={spec.config.max_length}")
    return trainer


def _timings(trainer: Trainer, seconds: float, train_seconds: float) -> dict[str, float]:
    """Wall time of the whole job and of training; examples are rows (RL: completions)."""
    args = trainer.args
    examples = trainer.state.global_step * args.per_device_train_batch_size
    examples *= args.gradient_accumulation_steps
    return {
        "seconds": round(seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "examples": examples,
        "examples_per_second": round(examples / train_seconds, 4) if train_seconds else 0.0,
    }


def _manifest(
    spec: JobSpec, name: str, callback: ProgressCallback, train_loss: float, state
) -> VersionManifest:
    losses = callback.losses
    return VersionManifest(
        name=name,
        parent=spec.parent,
        method=spec.method,
        artifact=spec.artifact,
        base_model=str(spec.base_model),
        base_model_name=spec.base_model.name,
        config=asdict(spec.config) | {"lora_from_parent": spec.parent is not None},
        dataset={
            "hash": dataset_hash(spec.train_rows),
            "train_size": len(spec.train_rows),
            "heldout_hash": dataset_hash(spec.heldout_rows) if spec.heldout_rows else None,
            "heldout_size": len(spec.heldout_rows),
        },
        metrics={
            "steps": state.global_step,
            "train_loss": float(train_loss),
            "first_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None,
            "last_log": callback.last_log,
            "out_of_time": callback.out_of_time,
        },
        timings={},
        device=_device_label(),
        reward_model=spec.reward_model,
        libraries=library_versions(),
    )


def _device_label() -> str:
    device = training_device()
    if device == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name()})"
    return device
