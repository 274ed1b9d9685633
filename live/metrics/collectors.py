"""Metrics read when Prometheus scrapes: the engine's state and what the database holds.

The engine's figures are this process's view (with several web processes, the one
that answered the scrape); the database's are everyone's.
"""

from __future__ import annotations

import re
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from feedback.models import PreferencePair, Rating, ReviewStatus
from llm.engine.base import Engine
from llm.engine.openai_compat import OpenAIEngine
from llm.engine.threaded import ThreadedEngine
from training.models import TrainingRun

RUN_BUCKETS = (60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800)
STAGE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
_STAGE_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d) stage: (.+)$", re.MULTILINE)


class EngineCollector:
    """The batch of an in-process engine; the replicas of an OpenAIEngine."""

    def __init__(self, engines: Iterable[Engine]):
        self.engines = list(engines)

    def collect(self) -> Iterator[Metric]:
        batch = GaugeMetricFamily("loopchat_engine_batch_size", "Rows in the running batch")
        waiting = GaugeMetricFamily(
            "loopchat_engine_waiting_replies", "Replies waiting to join the batch"
        )
        healthy = GaugeMetricFamily(
            "loopchat_replica_healthy",
            "1 while an inference server takes replies",
            labels=["replica"],
        )
        in_flight = GaugeMetricFamily(
            "loopchat_replica_in_flight",
            "Replies streaming from each server now",
            labels=["replica"],
        )
        for engine in self.engines:
            if isinstance(engine, ThreadedEngine):
                batch.add_metric([], engine.batch_size)
                waiting.add_metric([], engine.waiting)
            elif isinstance(engine, OpenAIEngine):
                for replica in engine.replicas:
                    healthy.add_metric([replica.url], int(replica.healthy))
                    in_flight.add_metric([replica.url], replica.in_flight)
        yield from (batch, waiting, healthy, in_flight)


class TrainingCollector:
    """Runs by status, run and stage durations, the running stage's progress."""

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "loopchat_training_runs", "Training runs by status (verdict)", labels=["status"]
        )
        counts = dict(TrainingRun.objects.values_list("status").annotate(n=Count("id")))
        for status in TrainingRun.Status.values:
            runs.add_metric([status], counts.get(status, 0))
        yield runs
        finished = list(
            TrainingRun.objects.filter(
                started_at__isnull=False, finished_at__isnull=False
            ).values_list("started_at", "finished_at", "log")
        )
        yield _histogram(
            "loopchat_training_run_duration_seconds",
            "Finished runs, from start to end",
            {(): [(end - start).total_seconds() for start, end, _ in finished]},
            RUN_BUCKETS,
        )
        stages: dict[tuple[str, ...], list[float]] = {}
        for start, end, log in finished:
            for stage, seconds in _stage_durations(log, start, end):
                stages.setdefault((stage,), []).append(seconds)
        yield _histogram(
            "loopchat_training_stage_duration_seconds",
            "Stages of finished runs, by stage (from the run's log)",
            stages,
            STAGE_BUCKETS,
            labels=["stage"],
        )
        yield self._progress()

    def _progress(self) -> Metric:
        progress = GaugeMetricFamily(
            "loopchat_training_stage_progress",
            "The running run's stage: steps done / steps planned (0 to 1)",
            labels=["run", "stage"],
        )
        for run in TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).only(
            "id", "stage", "step", "total_steps"
        ):
            progress.add_metric([str(run.pk), run.stage], run.progress)
        return progress


class FeedbackCollector:
    """Ratings and preference pairs by review status."""

    def collect(self) -> Iterator[Metric]:
        for model, name in ((Rating, "ratings"), (PreferencePair, "pairs")):
            family = GaugeMetricFamily(
                f"loopchat_feedback_{name}",
                f"{name.capitalize()} by review status",
                labels=["status"],
            )
            counts = dict(model.objects.values_list("status").annotate(n=Count("id")))
            for status in ReviewStatus.values:
                family.add_metric([status], counts.get(status, 0))
            yield family


def _stage_durations(log: str, start: datetime, end: datetime) -> list[tuple[str, float]]:
    """(stage, seconds) from the run's "HH:MM:SS stage: name" log lines; the last
    stage ends with the run. Times are of day: a line half a day earlier than the
    one before it crossed midnight."""
    marks, previous = [], start
    for hours, minutes, seconds, stage in _STAGE_LINE.findall(log):
        at = previous.replace(
            hour=int(hours), minute=int(minutes), second=int(seconds), microsecond=0
        )
        if at < previous - timedelta(hours=12):
            at += timedelta(days=1)
        marks.append((stage.strip(), at))
        previous = at
    ends = [at for _, at in marks[1:]] + [end]
    return [
        (stage, max(0.0, (stop - at).total_seconds()))
        for (stage, at), stop in zip(marks, ends, strict=True)
    ]


def _histogram(
    name: str,
    documentation: str,
    samples: dict[tuple[str, ...], list[float]],
    buckets: tuple[float, ...],
    labels: list[str] | None = None,
) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for label_values, values in samples.items():
        tally = Tally(next((b for b in buckets if v <= b), float("inf")) for v in values)
        cumulative, running = [], 0
        for bound in (*buckets, float("inf")):
            running += tally.get(bound, 0)
            cumulative.append((_bound(bound), running))
        family.add_metric(list(label_values), cumulative, sum_value=sum(values))
    return family


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else str(float(bound))
