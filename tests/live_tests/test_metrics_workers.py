"""A Celery worker serves its own metrics on ``WORKER_METRICS_PORT``, as ``make run``
starts it: the prefork pool runs tasks in a child process, which writes to the
worker's ``PROMETHEUS_MULTIPROC_DIR``; the main process serves the sum. Real processes."""

from __future__ import annotations

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.celery import app
from tests.support.servers import celery_process, free_port, process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def task_count(url: str, task: str, state: str) -> float | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            wanted = {"task": task, "state": state}
            if sample.name == "loopchat_celery_tasks_total" and sample.labels == wanted:
                return sample.value
    return 0


def test_a_worker_counts_its_tasks_on_its_own_port(tmp_path):
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = process_env(WORKER_METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    url = f"http://127.0.0.1:{port}/metrics"
    with celery_process("worker", env, tmp_path / "worker.log", pool="prefork"):
        deadline = time.monotonic() + 60
        while task_count(url, "chat.fail_stale_replies", "SUCCESS") is None:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
            time.sleep(0.5)
        for _ in range(2):
            app.send_task("chat.fail_stale_replies", queue="celery")
        while task_count(url, "chat.fail_stale_replies", "SUCCESS") != 2:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
            time.sleep(0.5)
