"""What the web process counts as it serves: sockets, replies, tokens, errors.

Gauges sum over live processes when several Uvicorn workers share
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from prometheus_client import Counter, Gauge, Histogram, multiprocess

WEBSOCKETS_OPEN = Gauge(
    "loopchat_websockets_open", "Websockets being served now", multiprocess_mode="livesum"
)
REPLIES_IN_FLIGHT = Gauge(
    "loopchat_replies_in_flight", "Replies being written now", multiprocess_mode="livesum"
)
REPLIES = Counter("loopchat_replies", "Replies finished, by status", ["status"])
REPLY_TOKENS = Counter("loopchat_reply_tokens", "Tokens streamed in replies")
TOKENS_PER_SECOND = Histogram(
    "loopchat_reply_tokens_per_second",
    "Each reply's tokens per second, from its request to its last token",
    buckets=(1, 2, 5, 10, 15, 20, 30, 50, 100, 200),
)
TIME_TO_FIRST_TOKEN = Histogram(
    "loopchat_reply_time_to_first_token_seconds",
    "From a reply's request to its first token",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
ERRORS = Counter(
    "loopchat_errors",
    "Failed replies by why (unreachable, server_lost, server_error, engine, internal), "
    "refused websocket frames and refused API requests by their error code",
    ["code"],
)
REPLICA_REPLIES = Counter(
    "loopchat_replica_replies", "Replies sent to each inference server", ["replica"]
)

_ERROR_FRAME = '{"type": "error"'


def reply_began() -> None:
    REPLIES_IN_FLIGHT.inc()


def reply_ended(*, outcome: dict, failure: str) -> None:
    """Count a finished reply (``outcome`` as ``reply_finish`` stores it)."""
    REPLIES_IN_FLIGHT.dec()
    REPLIES.labels(status=str(outcome["status"])).inc()
    tokens = outcome["completion_tokens"] or 0
    REPLY_TOKENS.inc(tokens)
    if outcome["time_to_first_token_ms"] is not None:
        TIME_TO_FIRST_TOKEN.observe(outcome["time_to_first_token_ms"] / 1000)
    if tokens and outcome["duration_ms"]:
        TOKENS_PER_SECOND.observe(tokens / (outcome["duration_ms"] / 1000))
    if failure:
        ERRORS.labels(code=failure).inc()


def replica_reply_counted(url: str) -> None:
    REPLICA_REPLIES.labels(replica=url).inc()


def counting_websockets(application):
    """Wrap a websocket ASGI application: count open sockets and refused frames."""

    async def counted(scope, receive, send):
        async def send_counted(message):
            text = message.get("text")
            if text and text.startswith(_ERROR_FRAME):
                ERRORS.labels(code=json.loads(text).get("code", "unknown")).inc()
            await send(message)

        WEBSOCKETS_OPEN.inc()
        try:
            return await application(scope, receive, send_counted)
        finally:
            WEBSOCKETS_OPEN.dec()

    return counted


class ErrorCounting:
    """Django middleware: count the API's refusals (``{"error": {"code": …}}``) by code."""

    sync_capable = async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        return _counted(self.get_response(request))

    async def _acall(self, request):
        return _counted(await self.get_response(request))


def _counted(response):
    if response.streaming or response.status_code < 400:
        return response
    if response.get("Content-Type") == "application/json":
        try:
            code = json.loads(response.content)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return response
        ERRORS.labels(code=str(code)).inc()
    return response


def forget_dead_processes(directory: str) -> None:
    """Drop the live gauges of processes that died without saying so (killed), so
    ``livesum`` sums live processes only. Multiprocess mode, this host."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        match = re.search(r"_(\d+)\.db$", path.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            multiprocess.mark_process_dead(int(match.group(1)), directory)
