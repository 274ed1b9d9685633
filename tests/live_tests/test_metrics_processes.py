"""With several Uvicorn processes (WEB_CONCURRENCY) sharing PROMETHEUS_MULTIPROC_DIR,
whichever process answers /metrics reports them all. Real processes."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import asgi_server, free_port, process_env
from tests.support.ws import open_chat, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

TOKEN = "token-of-the-process-test"


def open_sockets(url: str) -> float:
    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    (family,) = [
        f for f in text_string_to_metric_families(text) if f.name == "loopchat_websockets_open"
    ]
    return sum(sample.value for sample in family.samples)


async def both_started(log: Path, timeout: float = 90.0) -> int:
    """The number of Uvicorn's processes that have started, once both have (the
    server answers as soon as one has; under load the other may take many seconds
    more to import the app: CI once read the log after 1 of 2)."""
    deadline = time.monotonic() + timeout
    while (started := log.read_text().count("Started server process")) < 2:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    return started


async def test_two_web_processes_are_counted_together(alice, tmp_path):
    env = process_env(
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        METRICS_TOKEN=TOKEN,
        # No model in these processes: sockets are all this test needs.
        INFERENCE_MODE="workers",
        INFERENCE_WORKER_URLS=f"http://127.0.0.1:{free_port()}",
    )
    cookie = await sync_to_async(session_cookie)(alice)
    with asgi_server(env, tmp_path / "web.log") as url:
        assert await both_started(tmp_path / "web.log") == 2  # two processes serve
        sockets = [await open_chat(url, cookie) for _ in range(6)]
        counts = [await sync_to_async(open_sockets)(url) for _ in range(6)]
        for socket in sockets:
            await socket.close()
    assert counts == [6] * 6
    assert len(list(tmp_path.glob("gauge_livesum_*.db"))) == 2
