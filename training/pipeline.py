"""One training run, start to verdict: feedback → datasets → TRL jobs → gate → version.

Called by the Celery task and by ``manage.py train_now``. Every step is
recorded on the TrainingRun; nothing is activated unless every gate check
passes; a failure leaves no version directory behind.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from feedback.exports import pair_rows, pairs_for_training, ratings_for_training, unpaired_row
from training import services
from training.models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10


class RunSkipped(Exception):
    """Not enough data: the run ends as skipped, with this reason."""


@dataclass
class Feedback:
    pairs: list[dict]
    unpaired: list[dict]
    rating_ids: list[int]
    pair_ids: list[int]


def training_run_create(*, trigger: str = "schedule") -> TrainingRun | None:
    """Queue a run, or None when one is already in flight (the lock is a unique row)."""
    from django.db import IntegrityError

    try:
        with transaction.atomic():
            return TrainingRun.objects.create(trigger=trigger)
    except IntegrityError:
        return None


def training_run_execute(
    *, run_id: int, on_progress: Callable[[TrainingRun], None] | None = None
) -> TrainingRun:
    """Run a queued run to its end. Idempotent: a run not queued is left alone."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    run = TrainingRun.objects.get(pk=run_id)
    if not claimed:
        return run
    recorder = _Recorder(run, on_progress)
    try:
        with recorder.heartbeat():
            _train_and_judge(run, recorder)
    except RunSkipped as skipped:
        _finish(run, TrainingRun.Status.SKIPPED, reason=str(skipped))
    except Exception as error:  # noqa: BLE001 - recorded on the run, shown in the admin
        logger.exception("training run %s failed", run.pk)
        _remove_files(run)
        _finish(run, TrainingRun.Status.FAILED, error=f"{type(error).__name__}: {error}")
    return run


def _train_and_judge(run: TrainingRun, recorder: _Recorder) -> None:
    from llm.training import dataset_hash, split_by_conversation

    feedback = _collect_feedback()
    run.rating_ids, run.pair_ids = feedback.rating_ids, feedback.pair_ids
    run.dataset_hash = dataset_hash(feedback.pairs + feedback.unpaired)
    fraction, seed = settings.TRAINING_EVAL_FRACTION, 0
    train_pairs, heldout_pairs = split_by_conversation(feedback.pairs, fraction, seed)
    train_unpaired, _ = split_by_conversation(feedback.unpaired, fraction, seed)
    reward_model = _latest_passed_reward_model()
    plan = _plan(feedback, reward_model)
    if plan.train_reward_model and heldout_pairs:
        reward_model = (
            _train_reward_model(run, train_pairs, heldout_pairs, recorder) or reward_model
        )
        plan = _plan(feedback, reward_model)
    run.method = "+".join(plan.stages)
    recorder.log(f"plan: {plan.reason}")
    if plan.empty:
        raise RunSkipped(plan.reason)
    parent = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    run.parent_version = parent if parent and not parent.is_base else None
    parent_dir = run.parent_version.adapter_path if run.parent_version else None
    data = {
        "train_pairs": train_pairs,
        "train_unpaired": train_unpaired,
        "heldout_pairs": heldout_pairs,
        "reward_model": reward_model,
    }
    candidate_dir = _train(run, plan.stages, data, parent_dir, recorder)
    report = _judge(candidate_dir, parent_dir, heldout_pairs, recorder)
    _register(run, candidate_dir, report)


def _plan(feedback: Feedback, reward_model: str | None):
    from llm.training import choose_method

    return choose_method(
        feedback.pairs,
        feedback.unpaired,
        reward_model_passed=reward_model is not None,
        method=settings.TRAINING_METHOD or None,
        min_examples=settings.TRAINING_MIN_EXAMPLES,
        min_reward_pairs=settings.TRAINING_MIN_REWARD_PAIRS,
    )


def _latest_passed_reward_model() -> str | None:
    """The newest reward model that passed its own held-out evaluation, if still on disk."""
    for metrics in TrainingRun.objects.filter(metrics__has_key="reward_model").values_list(
        "metrics", flat=True
    ):
        reward = metrics["reward_model"]
        if reward.get("passed") and Path(reward["path"]).exists():
            return reward["path"]
    return None


def _train_reward_model(run, train_pairs, heldout_pairs, recorder) -> str | None:
    from llm.evaluation import RewardModelThresholds, evaluate_reward_model
    from llm.training import RewardJobConfig, train_reward_model

    recorder.stage("reward_model")
    version = train_reward_model(
        base_model=_base_model_path(),
        pairs=train_pairs,
        heldout_pairs=heldout_pairs,
        output_dir=_stage_dir(run, "reward"),
        config=RewardJobConfig(**_job_knobs()),
        progress=recorder.progress,
        should_stop=recorder.should_stop,
    )
    thresholds = RewardModelThresholds(
        min_accuracy=settings.GATE_MIN_REWARD_ACCURACY, min_pairs=settings.GATE_MIN_REWARD_PAIRS
    )
    report = evaluate_reward_model(version.path, heldout_pairs, thresholds=thresholds)
    run.metrics = {**run.metrics, "reward_model": {"path": str(version.path), **report.to_dict()}}
    recorder.log(
        f"reward model accuracy {report.accuracy}: {'passed' if report.passed else 'failed'}"
    )
    return str(version.path) if report.passed else None


def _job_knobs() -> dict:
    return {
        "max_steps": settings.TRAINING_MAX_STEPS,
        "learning_rate": settings.TRAINING_LEARNING_RATE,
    }


def _collect_feedback() -> Feedback:
    """Rows and their ids from one read, so the recorded lineage is exactly what trained."""
    ratings = list(ratings_for_training())
    pairs = list(pairs_for_training())
    return Feedback(
        pairs=list(pair_rows(pairs)),
        unpaired=[unpaired_row(rating) for rating in ratings],
        rating_ids=[rating.pk for rating in ratings],
        pair_ids=[pair.pk for pair in pairs],
    )


def _train(run: TrainingRun, stages, data: dict, parent_dir: str | None, recorder) -> Path:
    """Run the plan's stages in order, each continuing the previous; return the last."""
    from llm.training import (
        DPOJobConfig,
        KTOJobConfig,
        OnlineRLJobConfig,
        train_dpo,
        train_kto,
        train_online_rl,
    )

    base, knobs = _base_model_path(), _job_knobs()
    hooks = {"progress": recorder.progress, "should_stop": recorder.should_stop}
    for stage in stages:
        recorder.stage(stage)
        output_dir = _stage_dir(run, stage)
        if stage == "dpo":
            train_dpo(
                base_model=base,
                pairs=data["train_pairs"],
                output_dir=output_dir,
                heldout_pairs=data["heldout_pairs"],
                parent=parent_dir,
                config=DPOJobConfig(**knobs),
                **hooks,
            )
        elif stage == "kto":
            train_kto(
                base_model=base,
                rows=data["train_unpaired"],
                output_dir=output_dir,
                parent=parent_dir,
                config=KTOJobConfig(**knobs),
                **hooks,
            )
        else:
            prompts = [row["prompt"] for row in data["train_pairs"] + data["train_unpaired"]]
            train_online_rl(
                base_model=base,
                reward_model=data["reward_model"],
                prompts=prompts,
                output_dir=output_dir,
                parent=parent_dir,
                config=OnlineRLJobConfig(
                    learning_rate=settings.TRAINING_LEARNING_RATE,
                    max_steps=settings.TRAINING_RL_STEPS,
                ),
                **hooks,
            )
        parent_dir = str(output_dir)
    return output_dir


def _judge(output_dir: Path, parent_dir: str | None, heldout_pairs, recorder):
    from llm.evaluation import GateThresholds, evaluate_candidate

    recorder.stage("evaluating")
    thresholds = GateThresholds(
        min_margin_gain=settings.GATE_MIN_MARGIN_GAIN,
        min_win_rate=settings.GATE_MIN_WIN_RATE,
        max_kl_per_token=settings.GATE_MAX_KL_PER_TOKEN,
        max_degenerate_share=settings.GATE_MAX_DEGENERATE_SHARE,
        max_length_ratio=settings.GATE_MAX_LENGTH_RATIO,
        max_degenerate_gain=settings.GATE_MAX_DEGENERATE_GAIN,
    )
    return evaluate_candidate(
        base_model=_base_model_path(),
        parent=parent_dir,
        candidate=output_dir,
        heldout_pairs=heldout_pairs,
        thresholds=thresholds,
    )


@transaction.atomic
def _register(run: TrainingRun, output_dir: Path, report) -> None:
    from llm.training import read_manifest

    manifest = read_manifest(output_dir)
    verdict = report.to_dict()
    version = ModelVersion.objects.create(
        name=output_dir.name,
        base_model=str(_base_model_path()),
        adapter_path=str(manifest.artifact_path(output_dir)),
        parent=run.parent_version,
        method=run.method,
        metrics={**manifest.metrics, **verdict.get("metrics", {})},
        gate_report=verdict,
    )
    run.version = version
    run.metrics = {
        **run.metrics,
        "gate": verdict.get("metrics", {}),
        "train": manifest.metrics,
        "timings": manifest.timings,
    }
    if report.passed:
        services.version_activate(version=version)
        _finish(run, TrainingRun.Status.SUCCEEDED)
    else:
        version.status = ModelVersion.Status.REJECTED
        version.save(update_fields=["status"])
        failed = [check["name"] for check in verdict.get("checks", []) if not check["passed"]]
        _finish(run, TrainingRun.Status.REJECTED, reason="gate failed: " + ", ".join(failed))


def _finish(run: TrainingRun, status: str, *, reason: str = "", error: str = "") -> None:
    run.status, run.reason, run.error = status, reason, error
    run.finished_at, run.in_flight = timezone.now(), None
    run.save()


def _stage_dir(run: TrainingRun, stage: str) -> Path:
    return Path(settings.MODEL_VERSIONS_DIR) / f"run-{run.pk}-{stage}"


def _remove_files(run: TrainingRun) -> None:
    """The run's stage folders and any staging folder a killed job left behind."""
    root = Path(settings.MODEL_VERSIONS_DIR)
    for path in [*root.glob(f"run-{run.pk}-*"), *root.glob(f".run-{run.pk}-*")]:
        shutil.rmtree(path, ignore_errors=True)


def _base_model_path() -> str:
    from llm.loading import resolve_model_path

    return resolve_model_path(settings.CHAT_MODEL, settings.MODEL_CACHE_DIR)


def stale_runs_fail() -> int:
    """Runs whose worker stopped beating (killed) end failed; their files are removed."""
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT)
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    count = 0
    for run in stale:
        _remove_files(run)
        _finish(
            run,
            TrainingRun.Status.FAILED,
            error=f"The worker stopped (no heartbeat since {run.heartbeat_at:%H:%M:%S}).",
        )
        count += 1
    return count


class _Recorder:
    """Progress, log and heartbeat of one run, written to its row."""

    def __init__(self, run: TrainingRun, on_progress):
        self.run, self.on_progress = run, on_progress
        self.last_write = 0.0

    def log(self, line: str) -> None:
        self.run.log += f"{timezone.now():%H:%M:%S} {line}\n"
        self._save(force=True)

    def stage(self, stage: str) -> None:
        self.run.stage, self.run.step, self.run.total_steps = stage, 0, 0
        self.log(f"stage: {stage}")

    def progress(self, progress) -> None:
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

    def should_stop(self) -> bool:
        return False

    def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_write > 1.0:
            self.last_write = now
            self.run.heartbeat_at = timezone.now()
            self.run.save(
                update_fields=[
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
            )

    def heartbeat(self):
        return _Heartbeat(self.run.pk)


class _Heartbeat:
    """Beats every few seconds from a thread, so a long step still looks alive."""

    def __init__(self, run_id: int):
        self.run_id, self.stop = run_id, threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join()

    def _beat(self) -> None:
        from django.db import connection

        try:
            while not self.stop.wait(HEARTBEAT_SECONDS):
                TrainingRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
        finally:
            connection.close()
