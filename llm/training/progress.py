"""Progress reports and cooperative stopping, fed from the trainer's callbacks.

A caller (a Celery task) passes ``progress`` to show a bar and ``should_stop``
to cancel; both are plain callables so nothing here knows who is listening.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from transformers import TrainerCallback


@dataclass(frozen=True)
class TrainingProgress:
    stage: str  # "loading", then the method ("dpo", "kto", ...), then "saving", "done"
    step: int
    total_steps: int
    loss: float | None = None
    epoch: float | None = None


ProgressFn = Callable[[TrainingProgress], None]
StopFn = Callable[[], bool]


class TrainingStopped(RuntimeError):
    """``should_stop`` asked the job to stop; no version directory was written."""


@dataclass
class ProgressCallback(TrainerCallback):
    stage: str
    progress: ProgressFn | None = None
    should_stop: StopFn | None = None
    # Seconds of training after which it ends early, keeping what it learnt.
    time_budget: float | None = None
    losses: list[float] = field(default_factory=list)
    last_log: dict[str, float] = field(default_factory=dict)
    stopped: bool = False
    out_of_time: bool = False
    started: float = 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return  # the end-of-training summary, not a step
        loss = float(logs["loss"])
        self.losses.append(loss)
        self.last_log = {
            key: float(value)
            for key, value in logs.items()
            if isinstance(value, int | float) and math.isfinite(value)
        }
        self.report(state.global_step, state.max_steps, loss, state.epoch)

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.should_stop is not None and self.should_stop():
            self.stopped = True
            control.should_training_stop = True
        elif self.time_budget is not None and time.monotonic() - self.started > self.time_budget:
            self.out_of_time = True
            control.should_training_stop = True

    def report(self, step: int, total: int, loss: float | None, epoch: float | None) -> None:
        if self.progress is not None:
            self.progress(TrainingProgress(self.stage, step, total, loss, epoch))


def report(progress: ProgressFn | None, stage: str, step: int = 0, total: int = 0) -> None:
    if progress is not None:
        progress(TrainingProgress(stage=stage, step=step, total_steps=total))
