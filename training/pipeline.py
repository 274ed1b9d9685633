"""One training run, start to verdict: feedback → datasets → TRL jobs → gate → version.

Called by the Celery task and by ``manage.py train_now``. Every step is
recorded on the TrainingRun; nothing is activated unless every gate check
passes; a failure leaves no version directory behind. This module loads the
model stack (torch, TRL): only the training worker imports it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from llm.engine.base import Engine
from llm.engine.choice import engine_kind, in_process_engine
from llm.engine.gguf_lora import base_gguf_for, ensure_gguf_lora
from llm.evaluation import GateReport, evaluate_candidate, evaluate_reward_model
from llm.evaluation.reward import evaluate_thumbs_reward_model
from llm.loading import resolve_model_path
from llm.training import (
    RewardJobConfig,
    ThumbsRewardJobConfig,
    dataset_hash,
    read_manifest,
    thumb_comparisons,
    train_reward_model,
)
from training import arena, knobs, services
from training.models import ModelVersion, TrainingRun
from training.planning import (
    Split,
    feedback_collect,
    feedback_split,
    latest_passed_reward_model,
    run_plan,
)
from training.recording import Recorder
from training.runs import run_files_remove, stage_dir, training_run_finish
from training.stages import STAGES, StageJob, TrainingData

logger = logging.getLogger(__name__)


class RunSkipped(Exception):
    """Not enough data, or none that could judge it: the run ends as skipped, with this reason."""


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
    recorder = Recorder(run, on_progress)
    try:
        with recorder.heartbeat():
            _train_and_judge(run, recorder)
    except RunSkipped as skipped:
        training_run_finish(run, TrainingRun.Status.SKIPPED, reason=str(skipped))
    except Exception as error:  # noqa: BLE001 - recorded on the run, shown in the admin
        logger.exception("training run %s failed", run.pk)
        run_files_remove(run)
        training_run_finish(
            run, TrainingRun.Status.FAILED, error=f"{type(error).__name__}: {error}"
        )
    return run


def _train_and_judge(run: TrainingRun, recorder: Recorder) -> None:
    feedback = feedback_collect()
    run.rating_ids, run.pair_ids = feedback.rating_ids, feedback.pair_ids
    run.dataset_hash = dataset_hash(feedback.pairs + feedback.unpaired)
    split = feedback_split(feedback)
    # Any reward model that passed judges generated replies; online RL takes one from pairs.
    judge_model = latest_passed_reward_model()
    rl_model = latest_passed_reward_model(learnt_from="pairs")
    plan = run_plan(split, rl_reward_model=rl_model is not None)
    recorder.log(f"plan: {plan.statement}")
    run.metrics = {**run.metrics, "plan": plan.statement}
    if not plan.runnable:
        raise RunSkipped(plan.statement)
    if plan.train_reward_model and (trained := _train_reward_model(run, split, recorder)):
        judge_model, learnt_from = trained
        rl_model = judge_model if learnt_from == "pairs" else rl_model
        plan = run_plan(split, rl_reward_model=rl_model is not None)
    data = _training_data(split, plan.stages, rl_model, judge_model)
    run.method = "+".join(plan.stages)
    parent = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    run.parent_version = parent if parent and not parent.is_base else None
    parent_dir = run.parent_version.adapter_path if run.parent_version else None
    outputs = _train(run, plan.stages, data, parent_dir, recorder)
    judged = [
        Candidate(stage, path, _judge(path, parent_dir, data, recorder, stage))
        for stage, path in outputs
    ]
    best = _best(judged)
    run.metrics = {**run.metrics, "stages": {c.stage: _verdict(c) for c in judged}}
    recorder.log(f"chosen: {best.stage} ({'passed' if best.report.passed else 'failed'})")
    _register(run, best, plan.stages[: plan.stages.index(best.stage) + 1])


def _training_data(
    split: Split, stages: tuple[str, ...], rl_model: str | None, judge_model: str | None
) -> TrainingData:
    """What the stages train on. Without a DPO stage, KTO takes the pairs too, unrolled."""
    return TrainingData(
        train_pairs=split.train_pairs,
        train_unpaired=split.train_unpaired,
        heldout_pairs=split.heldout_pairs,
        reward_model=rl_model,
        heldout_unpaired=split.heldout_unpaired,
        kto_takes_pairs="dpo" not in stages,
        judge_reward_model=judge_model,
    )


def _train_reward_model(
    run: TrainingRun, split: Split, recorder: Recorder
) -> tuple[str, str] | None:
    """A reward model on the pairs when enough exist, else Bradley–Terry over the thumbs.

    Returns (path, "pairs" or "thumbs") when it passed its held-out evaluation.
    """
    recorder.stage("reward_model")
    pairs = len(split.train_pairs) + len(split.heldout_pairs)
    on_pairs = pairs >= settings.TRAINING_MIN_REWARD_PAIRS and bool(split.heldout_pairs)
    version = train_reward_model(
        base_model=_base_model_path(),
        pairs=split.train_pairs if on_pairs else thumb_comparisons(split.train_unpaired),
        heldout_pairs=split.heldout_pairs,
        output_dir=stage_dir(run, "reward"),
        config=knobs.job_config(RewardJobConfig if on_pairs else ThumbsRewardJobConfig),
        progress=recorder.progress,
        should_stop=recorder.should_stop,
    )
    thresholds = knobs.reward_model_thresholds()
    if on_pairs:
        report = evaluate_reward_model(version.path, split.heldout_pairs, thresholds=thresholds)
    else:
        report = evaluate_thumbs_reward_model(
            version.path, split.heldout_unpaired, thresholds=thresholds
        )
    learnt_from = "pairs" if on_pairs else "thumbs"
    run.metrics = {
        **run.metrics,
        "reward_model": {"path": str(version.path), "from": learnt_from, **report.to_dict()},
    }
    recorder.log(
        f"reward model ({learnt_from}) accuracy {report.accuracy}: "
        f"{'passed' if report.passed else 'failed'}"
    )
    return (str(version.path), learnt_from) if report.passed else None


def _train(
    run: TrainingRun,
    stages: list[str],
    data: TrainingData,
    parent_dir: str | None,
    recorder: Recorder,
) -> list[tuple[str, Path]]:
    """Run the plan's stages in order, each continuing the previous; every output."""
    outputs = []
    for name in stages:
        recorder.stage(name)
        stage = STAGES[name]
        job = StageJob(
            base_model=_base_model_path(),
            parent=parent_dir,
            data=data,
            output_dir=stage_dir(run, name),
            config=knobs.job_config(stage.config_class),
            progress=recorder.progress,
            should_stop=recorder.should_stop,
        )
        stage.train(job)
        outputs.append((name, job.output_dir))
        parent_dir = str(job.output_dir)
    return outputs


@dataclass(frozen=True)
class Candidate:
    """One stage's output and the gate's verdict on it against the version in service."""

    stage: str
    path: Path
    report: GateReport


def _best(candidates: list[Candidate]) -> Candidate:
    """The passing candidate whose held-out replies the reward model scores highest.

    Without reward-model scores, the furthest stage that passes (each builds on the
    one before); if none passes, the last. A later stage that makes things worse
    (online RL looping, or merely scoring lower) must not replace an earlier one.
    """
    passing = [c for c in candidates if c.report.passed]
    if not passing:
        return candidates[-1]
    scored = [c for c in passing if _reward(c) is not None]
    if len(scored) == len(passing):
        # max keeps the first of equals: a later stage must beat, not match, an earlier one.
        return max(scored, key=_reward)
    return passing[-1]


def _reward(candidate: Candidate) -> float | None:
    """Mean reward-model score of the candidate's held-out replies, greedy and sampled."""
    metrics = candidate.report.metrics
    scores = [metrics.get(f"candidate_{mode}_reward_mean") for mode in ("greedy", "sampled")]
    return None if None in scores else sum(scores) / len(scores)


# Per stage, the figures that say whether it helped: margins, drift, and the reward of
# what it writes to held-out prompts against the parent's.
_STAGE_FIGURES = (
    "candidate_margin_mean",
    "kl_per_token",
    "generated_win_rate",
    "parent_greedy_reward_mean",
    "candidate_greedy_reward_mean",
    "parent_sampled_reward_mean",
    "candidate_sampled_reward_mean",
    "heldout_greedy_changed_share",
    "candidate_degenerate_share",
    "gate_seconds",
)


def _verdict(candidate: Candidate) -> dict:
    metrics = candidate.report.metrics
    return {
        "passed": candidate.report.passed,
        "failed": candidate.report.failed,
        **{name: metrics[name] for name in _STAGE_FIGURES if name in metrics},
    }


def _judge(
    output_dir: Path,
    parent_dir: str | None,
    data: TrainingData,
    recorder: Recorder,
    stage: str,
) -> GateReport:
    """The gate on one stage's output against the version in service (not the stage before)."""
    evaluating = f"evaluating {stage}"
    recorder.stage(evaluating)
    started = time.monotonic()
    report = evaluate_candidate(
        base_model=_base_model_path(),
        parent=parent_dir,
        candidate=output_dir,
        heldout_pairs=data.heldout_pairs,
        heldout_thumbs=data.heldout_unpaired,
        thresholds=knobs.gate_thresholds(),
        reward_model=data.judge_reward_model,
        progress=lambda progress: recorder.part(evaluating, progress),
        engine=_serving_engine(),
    )
    report.metrics["gate_seconds"] = round(time.monotonic() - started, 1)
    recorder.log(
        f"{stage}: gate {'passed' if report.passed else 'failed: ' + ', '.join(report.failed)}"
    )
    return report


def _serving_engine() -> Callable[[], Engine] | None:
    """Where users are answered by llama.cpp (the embedded model's default), the gate's
    replies are written by that engine too, so the gate judges what users get. The
    transformers engine's replies are the gate's own model's already (None); a vLLM
    site's gate writes with transformers."""
    model = settings.CHAT_MODEL
    if settings.INFERENCE_BACKEND == "vllm" or (
        engine_kind(settings.INFERENCE_ENGINE, model) != "llamacpp"
    ):
        return None
    return lambda: in_process_engine(
        model,
        choice="llamacpp",
        cache_dir=settings.MODEL_CACHE_DIR,
        threads=settings.MODEL_THREADS,
        weights=settings.LLAMACPP_WEIGHTS,
    )


@transaction.atomic
def _register(run: TrainingRun, candidate: Candidate, stages: list[str]) -> None:
    output_dir, report = candidate.path, candidate.report
    manifest = read_manifest(output_dir)
    verdict = report.to_dict()
    _write_gguf_adapter(manifest.artifact_path(output_dir))
    version = ModelVersion.objects.create(
        name=output_dir.name,
        base_model=str(_base_model_path()),
        adapter_path=str(manifest.artifact_path(output_dir)),
        parent=run.parent_version,
        method="+".join(stages),
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
    if report.passed and settings.ARENA_GATE_VOTES > 0:
        _hold_for_arena(version)
        training_run_finish(
            run,
            TrainingRun.Status.SUCCEEDED,
            reason=f"held for the arena until {settings.ARENA_GATE_VOTES} votes against its parent",
        )
    elif report.passed:
        services.version_activate(version=version)
        training_run_finish(run, TrainingRun.Status.SUCCEEDED)
    else:
        version.status = ModelVersion.Status.REJECTED
        version.save(update_fields=["status"])
        failed = report.failed
        training_run_finish(
            run, TrainingRun.Status.REJECTED, reason="gate failed: " + ", ".join(failed)
        )


def _write_gguf_adapter(adapter_dir: Path) -> None:
    """Also write the adapter as a GGUF LoRA when the base is served from a GGUF file.

    So the llama.cpp engine hot-loads the version without converting it first (the
    file the gate's llama.cpp replies already wrote is kept). A conversion that fails
    or is refused is logged and the version registers all the same: the transformers
    engine serves it, and llama.cpp converts it on first use (ensure_gguf_lora), where
    a refusal fails that load with the same message.
    """
    base_gguf = base_gguf_for(settings.CHAT_MODEL)  # the embedded model or a .gguf path
    if base_gguf is None:  # a plain Hugging Face folder (the tests' tiny model): no llama.cpp
        return
    try:
        ensure_gguf_lora(adapter_dir, base_gguf=base_gguf)
    except Exception:  # noqa: BLE001 - a version must not be lost for want of a second format
        logger.exception(
            "no GGUF LoRA written for %s (llama.cpp tries again when it loads it)", adapter_dir
        )


def _hold_for_arena(version: ModelVersion) -> None:
    """Keep a passing candidate out of service until the arena has judged it."""
    check = arena.arena_check(candidate=version, parent=version.parent)
    report = version.gate_report
    version.gate_report = {**report, "checks": [*report.get("checks", []), check]}
    version.metrics = {**version.metrics, "arena_hold": True}
    version.save(update_fields=["gate_report", "metrics"])


def _base_model_path() -> str:
    return resolve_model_path(settings.CHAT_MODEL, settings.MODEL_CACHE_DIR)
