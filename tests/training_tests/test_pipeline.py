"""The retraining pipeline on the tiny model: skip, promote, reject, fail, lock, tick."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from chat import services as chat_services
from feedback import services as feedback_services
from feedback.models import Rating
from llm.training import read_manifest
from tests.support.factories import exchange
from tests.support.gate import PERMISSIVE_GATE
from training import pipeline, planning, runs, tasks
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tiny_training(settings, tiny_model_dir, tmp_path):
    settings.CHAT_MODEL = str(tiny_model_dir)
    settings.MODEL_VERSIONS_DIR = tmp_path / "versions"
    settings.TRAINING_KNOBS = {"max_steps": 2}
    settings.TRAINING_MIN_NEW_FEEDBACK = 10
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return settings


def permissive_gate(settings) -> None:
    """The tiny random model cannot learn for real: these tests check the plumbing."""
    settings.GATE_KNOBS = dict(PERMISSIVE_GATE)


def run_once(on_progress=None) -> TrainingRun:
    run = runs.training_run_create(trigger="manual")
    return pipeline.training_run_execute(run_id=run.pk, on_progress=on_progress)


def test_it_skips_a_run_without_enough_feedback(tiny_training, alice):
    run = run_once()
    assert run.status == "skipped"
    assert "too little feedback" in run.reason
    assert run.in_flight is None


def test_it_trains_judges_and_promotes_with_lineage(tiny_training, feedback):
    permissive_gate(tiny_training)
    seen = []
    run = run_once(lambda run: seen.append((run.stage, run.step, run.total_steps)))
    assert run.status == "succeeded", run.error or run.reason
    assert run.method == "dpo"
    # The gate's parts show as they go, counted; the finished run reads as its verdict.
    evaluating = [shown for shown in seen if shown[0].startswith("evaluating dpo: ")]
    assert ("evaluating dpo: held-out replies, sampled, candidate", 8, 11) in evaluating
    assert evaluating[-1] == ("evaluating dpo: done", 11, 11)
    assert run.stage == "succeeded"
    # Each conversation's two thumbs made a derived pair: they count once, as the pair.
    assert len(run.pair_ids) == 10 and run.rating_ids == []
    assert run.metrics["plan"].startswith("0 thumbs, 10 pairs: DPO")
    assert len(run.dataset_hash) == 64
    assert run.history and run.history[-1]["step"] == 2
    version = run.version
    assert version.status == "active"
    assert Path(version.adapter_path, "adapter_config.json").exists()
    assert version.gate_report["passed"] is True
    assert {check["name"] for check in version.gate_report["checks"]} == {
        "heldout_feedback",
        "heldout_margin",
        "heldout_win_rate",
        "heldout_preference",
        "heldout_preferred_share",
        "drift_kl",
        "degenerate_replies",
        "degenerate_likelihood",
        "degenerate_feedback",
        "length_ratio",
        "generated_win_rate",
        "thumbs_margin",
        "thumbs_ranking",
        "thumbs_up_likelier",
    }
    assert "thumbs_margin" not in version.gate_report["metrics"]["decided_by"]


def test_a_reward_model_that_passes_adds_an_online_rl_stage(tiny_training, feedback):
    """Enough pairs train a reward model; once it passes, RLOO follows DPO against it."""
    permissive_gate(tiny_training)
    tiny_training.TRAINING_MIN_REWARD_PAIRS = 4
    tiny_training.GATE_KNOBS.update(min_reward_accuracy=0.0, min_reward_pairs=1)
    tiny_training.TRAINING_RL_KNOBS = {"max_steps": 1}
    run = run_once()
    assert run.status == "succeeded", run.error or run.reason
    assert run.method == "dpo+online_rl", run.log
    assert run.metrics["reward_model"]["passed"] is True
    assert "stage: reward_model" in run.log and "stage: online_rl" in run.log
    # Both stages were judged; the one whose held-out replies the reward model scored
    # higher went into service (the earlier one on a tie).
    stages = run.metrics["stages"]
    assert set(stages) == {"dpo", "online_rl"}

    def reward(stage: str) -> float:
        figures = stages[stage]
        return figures["candidate_greedy_reward_mean"] + figures["candidate_sampled_reward_mean"]

    best = "online_rl" if reward("online_rl") > reward("dpo") else "dpo"
    assert run.version.name == f"run-{run.pk}-{best}"
    # The next run reuses the reward model that passed.
    assert planning.latest_passed_reward_model() == run.metrics["reward_model"]["path"]


def test_a_candidate_that_fails_the_gate_is_rejected(tiny_training, feedback):
    permissive_gate(tiny_training)
    tiny_training.GATE_KNOBS["min_margin_gain"] = 1e9
    run = run_once()
    assert run.status == "rejected"
    assert "heldout_margin" in run.reason
    assert run.version.status == "rejected"
    assert not ModelVersion.objects.filter(status="active").exists()


def test_a_failing_run_is_recorded_and_cleaned_up(tiny_training, feedback, tmp_path):
    tiny_training.CHAT_MODEL = str(tmp_path / "missing-model")
    run = run_once()
    assert run.status == "failed"
    assert run.error
    assert run.in_flight is None
    assert list((tmp_path / "versions").glob("*")) == []
    assert not ModelVersion.objects.exists()


def test_only_one_run_is_in_flight(tiny_training):
    first = runs.training_run_create()
    assert runs.training_run_create() is None
    runs.training_run_finish(first, TrainingRun.Status.SKIPPED)
    assert runs.training_run_create() is not None


def test_the_tick_waits_for_enough_new_feedback(tiny_training, feedback):
    tiny_training.TRAINING_MIN_NEW_FEEDBACK = 1000
    assert "waiting" in tasks.tick()
    assert not TrainingRun.objects.exists()


def test_a_later_stage_that_fails_the_gate_does_not_throw_away_one_that_passed(
    tiny_training, feedback
):
    """DPO passes, the online RL stage built on it fails: the DPO candidate goes into
    service, and the run records both verdicts."""
    permissive_gate(tiny_training)
    tiny_training.TRAINING_MIN_REWARD_PAIRS = 4
    tiny_training.GATE_KNOBS.update(min_reward_accuracy=0.0, min_reward_pairs=1)
    tiny_training.TRAINING_RL_KNOBS = {"max_steps": 1}
    judged = []

    def judge_rl_as_failed(output_dir, *args):
        report = real_judge(output_dir, *args)
        judged.append(output_dir.name)
        if output_dir.name.endswith("online_rl"):
            report.check("heldout_margin").passed, report.passed = False, False
        return report

    real_judge = pipeline._judge
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "_judge", judge_rl_as_failed)
        run = run_once()
    assert run.status == "succeeded", run.error or run.reason
    assert judged == [f"run-{run.pk}-dpo", f"run-{run.pk}-online_rl"]
    assert run.version.name == f"run-{run.pk}-dpo" and run.version.method == "dpo"
    assert run.metrics["stages"]["dpo"]["passed"] is True
    rl = run.metrics["stages"]["online_rl"]
    assert (rl["passed"], rl["failed"]) == (False, ["heldout_margin"])
    # Each stage's figures are kept: what it writes, scored by the run's reward model.
    assert {"kl_per_token", "generated_win_rate", "candidate_greedy_reward_mean"} <= set(rl)


def _candidate(stage: str, passed: bool, greedy=None, sampled=None):
    from llm.evaluation import Check, GateReport

    metrics = {}
    if greedy is not None:
        metrics = {"candidate_greedy_reward_mean": greedy, "candidate_sampled_reward_mean": sampled}
    report = GateReport.from_checks([Check("x", passed, None, None)], metrics)
    return pipeline.Candidate(stage, Path(stage), report)


def test_the_best_passing_stage_is_promoted_by_what_the_reward_model_scores():
    """Online RL that passes but writes replies the reward model scores lower loses to DPO;
    without scores the furthest passing stage wins; with none passing, the last is kept."""
    dpo, rl = _candidate("dpo", True, 0.9, 0.8), _candidate("online_rl", True, 0.8, 0.8)
    assert pipeline._best([dpo, rl]).stage == "dpo"
    better = _candidate("online_rl", True, 1.2, 0.9)
    assert pipeline._best([dpo, better]).stage == "online_rl"
    equal = _candidate("online_rl", True, 0.9, 0.8)
    assert pipeline._best([dpo, equal]).stage == "dpo"
    assert (
        pipeline._best([_candidate("dpo", True), _candidate("online_rl", True)]).stage
        == "online_rl"
    )
    assert (
        pipeline._best([_candidate("dpo", False), _candidate("online_rl", False)]).stage
        == "online_rl"
    )
    assert pipeline._best([dpo, _candidate("online_rl", False, 2.0, 2.0)]).stage == "dpo"


def test_a_failed_runs_feedback_is_retried_a_bounded_number_of_times(tiny_training, feedback):
    """A killed worker's run fails; its feedback queues the next tick's run again, up to
    TRAINING_MAX_RETRIES times in a row; a run that did not fail counts as done."""
    from unittest.mock import patch

    tiny_training.TRAINING_MIN_NEW_FEEDBACK = 10
    tiny_training.TRAINING_MAX_RETRIES = 2
    with patch.object(tasks.run_training, "delay"):  # queue only: the test plays the worker
        for attempt in range(3):
            assert tasks.tick().startswith("queued run"), attempt
            run = TrainingRun.objects.get(in_flight=True)
            runs.training_run_finish(run, TrainingRun.Status.FAILED, error="killed")
        assert "waiting" in tasks.tick()  # three failures in a row: no fourth try

        # New feedback after the last failure starts a run again; one that ends (here
        # skipped) makes the same feedback old.
        TrainingRun.objects.update(created_at=timezone.now() - timedelta(minutes=1))
        Rating.objects.update(updated_at=timezone.now())
        assert tasks.tick().startswith("queued run")
        runs.training_run_finish(TrainingRun.objects.get(in_flight=True), "skipped")
        assert "waiting" in tasks.tick()


@pytest.fixture
def thumbs(alice, bob):
    """What most users give: one thumb on the one reply they read, 24 conversations."""
    for index in range(24):
        conversation = chat_services.conversation_create(owner=alice)
        _, (reply,) = exchange(conversation, f"Question {index}?", [f"Answer {index}."])
        value = "up" if index % 3 == 0 else "down"
        feedback_services.rating_submit(user=alice, message_id=reply.pk, value=value)
    feedback_services.ratings_review(ratings=Rating.objects.all(), reviewer=bob, status="approved")


def test_thumbs_alone_train_kto_judged_on_held_out_thumbs(tiny_training, thumbs):
    permissive_gate(tiny_training)
    run = run_once()
    assert run.status == "succeeded", run.error or run.reason
    assert run.method == "kto" and len(run.rating_ids) == 24 and run.pair_ids == []
    assert run.metrics["plan"].startswith("24 thumbs, 0 pairs: KTO")
    report = run.version.gate_report
    decided = report["metrics"]["decided_by"]
    assert {"heldout_feedback", "thumbs_margin", "thumbs_ranking"} <= set(decided)
    assert "heldout_margin" not in decided  # no pairs: not applicable, not "passed"
    assert report["metrics"]["heldout_thumbs"] >= 6


def test_a_run_nothing_held_out_could_judge_is_skipped_before_training(tiny_training, alice, bob):
    """Only thumbs up: KTO could train, but no held-out down-rated reply can judge it."""
    for index in range(12):
        conversation = chat_services.conversation_create(owner=alice)
        _, (reply,) = exchange(conversation, f"Question {index}?", [f"Answer {index}."])
        feedback_services.rating_submit(user=alice, message_id=reply.pk, value="up")
    feedback_services.ratings_review(ratings=Rating.objects.all(), reviewer=bob, status="approved")
    run = run_once()
    assert run.status == "skipped" and run.version is None
    assert "no run can pass yet" in run.reason and "0 down-rated held-out" in run.reason
    assert "stage: kto" not in run.log


def test_pairs_and_lone_thumbs_train_in_one_run(tiny_training, feedback, thumbs):
    """Mixed data: lone thumbs outweigh the pairs, so KTO trains on both, the pairs
    unrolled (an up and a down each), every piece of feedback counted once."""
    permissive_gate(tiny_training)
    split = planning.feedback_split(planning.feedback_collect())
    run = run_once()
    assert run.status == "succeeded", run.error or run.reason
    assert run.method == "kto"
    assert len(run.pair_ids) == 10 and len(run.rating_ids) == 24
    trained = read_manifest(Path(run.version.adapter_path).parent).dataset["train_size"]
    assert trained == len(split.train_unpaired) + 2 * len(split.train_pairs)
