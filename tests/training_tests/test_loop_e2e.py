"""The whole loop with real processes: ratings → beat tick → worker on Redis → new version
in service → the next websocket reply is written by it, with no restart; and a worker killed
mid-run leaves nothing activated and the next tick starts cleanly."""

from __future__ import annotations

import os
import signal
import time

import pytest
from channels.db import database_sync_to_async

from tests.support.chatting import new_conversation, reply_version
from tests.support.gate import permissive_gate_env
from tests.support.servers import celery_process, process_env
from training import tasks
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def loop_env(tiny_engine_settings, tiny_model_dir, tmp_path):
    tiny_engine_settings.MODEL_VERSIONS_DIR = tmp_path / "versions"
    return process_env(
        CHAT_MODEL=str(tiny_model_dir),
        MODEL_VERSIONS_DIR=str(tmp_path / "versions"),
        TRAINING_MIN_NEW_FEEDBACK="10",
        TRAINING_TICK_SECONDS="2",
        TRAINING_MAX_STEPS="2",
        **permissive_gate_env(),
    )


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def finished_run():
    return TrainingRun.objects.exclude(status__in=["queued", "running"]).first()


async def test_beat_and_worker_put_a_better_version_in_service(
    app, alice, feedback, loop_env, tmp_path
):
    conversation = await new_conversation(alice)
    assert await reply_version(app, alice, conversation) == "tiny-random-llama"
    with (
        celery_process("worker", loop_env, tmp_path / "worker.log"),
        celery_process("beat", loop_env, tmp_path / "beat.log"),
    ):
        run = await database_sync_to_async(wait_for)(finished_run, 240, "a finished run")
    assert run.status == "succeeded", (run.error, run.reason, run.log)
    assert run.trigger == "schedule"
    version = await database_sync_to_async(lambda: ModelVersion.objects.get(run=run))()
    assert version.status == "active"
    # The same web process, never restarted, now serves the new version.
    assert await reply_version(app, alice, conversation) == version.name


def test_a_killed_worker_fails_the_run_and_activates_nothing(
    alice,
    feedback,
    loop_env,
    tmp_path,
    settings,
):
    loop_env["TRAINING_MAX_STEPS"] = "100000"  # long enough to be killed in the middle
    settings.TRAINING_MIN_NEW_FEEDBACK = 10
    settings.TRAINING_HEARTBEAT_TIMEOUT = 3
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with celery_process("worker", loop_env, tmp_path / "worker.log") as worker:
        assert tasks.tick().startswith("queued run")
        run = wait_for(
            lambda: TrainingRun.objects.filter(status="running", step__gte=1).first(),
            120,
            "the run to start training",
        )
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    assert "a run is in flight" in tasks.tick()  # heartbeat not stale yet
    time.sleep(settings.TRAINING_HEARTBEAT_TIMEOUT + 1)
    # The tick fails the silent run; the lock is free, and the failed run's feedback
    # counts again, so the same tick queues a fresh run for it.
    result = tasks.tick()
    run.refresh_from_db()
    assert run.status == "failed"
    assert "no heartbeat" in run.error
    assert run.in_flight is None
    assert not ModelVersion.objects.exists()
    assert list((tmp_path / "versions").glob("*")) == []
    assert result.startswith("queued run") and TrainingRun.objects.filter(in_flight=True).exists()
