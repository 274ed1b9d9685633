"""``/metrics``: every metric of this process (of all web processes in multiprocess
mode) and those read from the database, for staff or a bearer token."""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from live.metrics import web  # noqa: F401 - its instruments exist from the first scrape
from live.metrics.collectors import EngineCollector, FeedbackCollector, TrainingCollector
from llm.engine.base import Engine

_engines: list[Engine] = []  # the engines this process serves with (config/asgi.py)


def engine_watch(*, engine: Engine) -> None:
    """Report ``engine``'s batch or replicas in this process's metrics."""
    _engines.append(engine)


def metrics_text(*, engines: list[Engine] | None = None, database: bool = True) -> bytes:
    """The exposition text: this process's (or all web processes') instruments, the
    engines' state and, with ``database``, training and feedback."""
    registry = CollectorRegistry(auto_describe=False)
    if settings.PROMETHEUS_MULTIPROC_DIR:
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(EngineCollector(_engines if engines is None else engines))
    if database:
        registry.register(TrainingCollector())
        registry.register(FeedbackCollector())
    return generate_latest(registry)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Staff (session) or ``Authorization: Bearer <METRICS_TOKEN>``; 401 or 403 otherwise."""
    if not (_bearer_allowed(request) or request.user.is_staff):
        status = 403 if request.user.is_authenticated else 401
        response = HttpResponse("Staff or the metrics token only.\n", status=status)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def _bearer_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given, token)


class _ThisProcess:
    """The default registry (this process's instruments, process and GC figures)."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()
