"""Progress, log and heartbeat of one training run, written to its row."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.db import connection
from django.utils import timezone

from llm.training import TrainingProgress
from training.models import TrainingRun

HEARTBEAT_SECONDS = 10
_SAVED_FIELDS = [
    "stage",
    "step",
    "total_steps",
    "history",
    "log",
    "heartbeat_at",
    "method",
    "rating_ids",
    "pair_ids",
    "dataset_hash",
    "parent_version",
]


class Recorder:
    """Writes what a run does to its row: at most once a second, log lines at once."""

    def __init__(self, run: TrainingRun, on_progress: Callable[[TrainingRun], None] | None):
        self.run, self.on_progress = run, on_progress
        self.last_write = 0.0

    def log(self, line: str) -> None:
        self.run.log += f"{timezone.now():%H:%M:%S} {line}\n"
        self._save(force=True)

    def stage(self, stage: str) -> None:
        self.run.stage, self.run.step, self.run.total_steps = stage, 0, 0
        self.log(f"stage: {stage}")

    def progress(self, progress: TrainingProgress) -> None:
        run = self.run
        run.step, run.total_steps = progress.step, progress.total_steps
        if progress.loss is not None:
            run.history.append(
                {
                    "stage": progress.stage,
                    "step": progress.step,
                    "loss": progress.loss,
                    "time": round(time.time(), 1),
                }
            )
        self._save()
        if self.on_progress:
            self.on_progress(run)

    def part(self, stage: str, progress: TrainingProgress) -> None:
        """Progress within ``stage`` that is not training (the gate's parts): named, counted."""
        self.run.stage = f"{stage}: {progress.stage}"[
            : TrainingRun._meta.get_field("stage").max_length
        ]
        self.progress(progress)

    def should_stop(self) -> bool:
        return False

    def heartbeat(self) -> Heartbeat:
        return Heartbeat(self.run.pk)

    def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_write > 1.0:
            self.last_write = now
            self.run.heartbeat_at = timezone.now()
            self.run.save(update_fields=_SAVED_FIELDS)


class Heartbeat:
    """Beats every few seconds from a thread, so a long step still looks alive."""

    def __init__(self, run_id: int):
        self.run_id, self.stop = run_id, threading.Event()

    def __enter__(self) -> Heartbeat:
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join()

    def _beat(self) -> None:
        try:
            while not self.stop.wait(HEARTBEAT_SECONDS):
                TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
        finally:
            connection.close()  # this thread's own connection
