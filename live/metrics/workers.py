"""A Celery worker's metrics on a port of its own, as Prometheus users expect of a
service: ``WORKER_METRICS_PORT`` (unset: none). config/celery.py imports this module.

Tasks run in the pool's child processes, the server in the worker's main process:
``scripts/run.sh`` gives each worker a ``PROMETHEUS_MULTIPROC_DIR`` of its own, and
the server sums what the children wrote there. Without one (``--pool solo``), the
worker's own registry is served.
"""

from __future__ import annotations

import logging
import time

from celery.signals import task_postrun, task_prerun, worker_init
from django.conf import settings
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
)

logger = logging.getLogger(__name__)

TASKS = Counter("loopchat_celery_tasks", "Tasks run, by name and final state", ["task", "state"])
TASK_SECONDS = Histogram(
    "loopchat_celery_task_duration_seconds",
    "How long each task ran",
    ["task"],
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 10800),
)
_started: dict[str, float] = {}


@worker_init.connect
def _serve_metrics(**_) -> None:
    port = settings.WORKER_METRICS_PORT
    if not port:
        return
    registry = REGISTRY
    if settings.PROMETHEUS_MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    address = f"http://{settings.WORKER_METRICS_HOST}:{port}/metrics"
    try:
        start_http_server(port, addr=settings.WORKER_METRICS_HOST, registry=registry)
    except OSError as error:  # the port is taken: the worker still works, unwatched
        logger.error("could not serve metrics on %s: %s", address, error)
        return
    logger.info("metrics on %s", address)


@task_prerun.connect
def _task_started(task_id: str, **_) -> None:
    _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_ended(task_id: str, task, state: str | None = None, **_) -> None:
    TASKS.labels(task=task.name, state=state or "UNKNOWN").inc()
    began = _started.pop(task_id, None)
    if began is not None:
        TASK_SECONDS.labels(task=task.name).observe(time.perf_counter() - began)
