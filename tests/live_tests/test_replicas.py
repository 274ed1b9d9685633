"""Several inference workers behind one web server, all real processes: equally idle
workers take turns, a worker killed mid-reply and started again takes replies again
within seconds (its health is asked in the background), and a failed reply tells its
user what happened without naming a server."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from prometheus_client.parser import text_string_to_metric_families

from chat import services
from chat.models import Message
from live.replies import USER_ERRORS
from llm.engine.base import Failure
from tests.support.servers import asgi_server, free_port, inference_worker, process_env
from tests.support.ws import frames_until, open_chat, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def split_env(tiny_model_4k_dir):
    return process_env(
        INFERENCE_MODE="workers",
        CHAT_MODEL=str(tiny_model_4k_dir),
        METRICS_TOKEN=TOKEN,
        CHAT_RATE_LIMIT_MESSAGES="1000",
    )


def completions(log: Path) -> int:
    """Chat completions the worker answered (Uvicorn's access log)."""
    return log.read_text().count("POST /v1/chat/completions")


def conversation_for(user, max_new_tokens: int):
    conversation = services.conversation_create(owner=user)
    return services.conversation_update(
        conversation=conversation, changes={"max_new_tokens": max_new_tokens}
    )


async def ask(socket, conversation) -> dict:
    frame = {"type": "send", "conversation": conversation.pk, "content": "Hi", "parent": None}
    await socket.send(json.dumps(frame))
    return (await frames_until(socket, "reply_done"))[-1]["message"]


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_it_gives_equally_idle_workers_turns(alice, split_env, tmp_path):
    """Six replies one after another: each worker answers three."""
    conversation = await sync_to_async(conversation_for)(alice, max_new_tokens=4)
    cookie = await sync_to_async(session_cookie)(alice)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    with (
        inference_worker(split_env, logs[0]) as (first, _),
        inference_worker(split_env, logs[1]) as (second, _),
    ):
        web_env = {
            **split_env,
            "INFERENCE_WORKER_URLS": f"{first},{second}",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),  # as make run starts it
        }
        with asgi_server(web_env, tmp_path / "web.log") as url:
            socket = await open_chat(url, cookie)
            for _ in range(6):
                assert (await ask(socket, conversation))["status"] == "complete"
            await socket.close()
            metrics = scrape(url)
        worker_metrics = scrape(first)  # its own: the batch, no token needed
    assert [completions(log) for log in logs] == [3, 3]
    assert worker_metrics[("loopchat_engine_batch_size", ())] == 0
    assert worker_metrics[("loopchat_engine_waiting_replies", ())] == 0
    for replica in (first, second):
        assert metrics[("loopchat_replica_replies_total", (("replica", replica),))] == 3
        assert metrics[("loopchat_replica_healthy", (("replica", replica),))] == 1


async def test_a_worker_killed_and_started_again_takes_replies_within_10_s(
    alice, split_env, tmp_path
):
    """Kill the worker writing a reply: the reply fails in words, naming no server; start
    the worker again on its port: once it answers /health, both workers get replies
    within 10 s (before, every later reply went to the other one)."""
    long = await sync_to_async(conversation_for)(alice, max_new_tokens=3000)
    short = await sync_to_async(conversation_for)(alice, max_new_tokens=4)
    cookie = await sync_to_async(session_cookie)(alice)
    port = free_port()
    logs = [tmp_path / "doomed.log", tmp_path / "spare.log", tmp_path / "restarted.log"]
    with ExitStack() as stack:
        spare, _ = stack.enter_context(inference_worker(split_env, logs[1]))
        doomed, process = stack.enter_context(inference_worker(split_env, logs[0], port=port))
        web_env = {**split_env, "INFERENCE_WORKER_URLS": f"{doomed},{spare}"}
        url = stack.enter_context(asgi_server(web_env, tmp_path / "web.log"))
        socket = await open_chat(url, cookie)
        frame = {"type": "send", "conversation": long.pk, "content": "Hi", "parent": None}
        await socket.send(json.dumps(frame))
        await frames_until(socket, "token")  # the first listed, idle, writes it
        process.send_signal(signal.SIGKILL)
        failed = (await frames_until(socket, "reply_done"))[-1]["message"]
        assert failed["status"] == "failed" and failed["content"]
        assert failed["error"] == USER_ERRORS[Failure.SERVER_LOST]
        assert "http" not in failed["error"] and "127.0.0.1" not in failed["error"]
        stored = await sync_to_async(Message.objects.get)(pk=failed["id"])
        assert doomed in stored.error_detail  # for staff, in the admin
        api_text = await sync_to_async(api_error)(url, cookie, long.pk, failed["id"])
        assert api_text == failed["error"]

        stack.enter_context(inference_worker(split_env, logs[2], port=port))
        healthy_at = time.monotonic()
        while time.monotonic() - healthy_at < 10 and not completions(logs[2]):
            assert (await ask(socket, short))["status"] == "complete"
            await asyncio.sleep(0.2)
        waited = time.monotonic() - healthy_at
        print(f"the restarted worker took a reply {waited:.1f} s after its /health answered")
        spare_before = completions(logs[1])
        for _ in range(2):
            assert (await ask(socket, short))["status"] == "complete"
        metrics = scrape(url)
        await socket.close()
    assert completions(logs[2]) >= 1 and waited < 10, waited
    assert completions(logs[1]) > spare_before  # both take replies afterwards
    assert metrics[("loopchat_errors_total", (("code", "server_lost"),))] == 1


def api_error(url: str, cookie: str, conversation_id: int, message_id: int) -> str:
    """The message's ``error`` as the HTTP API gives it."""
    request = urllib.request.Request(
        f"{url}/api/conversations/{conversation_id}/", headers={"Cookie": cookie}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data = json.loads(response.read())
    (message,) = [m for m in data["messages"] if m["id"] == message_id]
    assert "error_detail" not in message
    return message["error"]


async def test_it_fails_in_words_when_no_worker_answers(alice, split_env, tmp_path):
    conversation = await sync_to_async(conversation_for)(alice, max_new_tokens=4)
    cookie = await sync_to_async(session_cookie)(alice)
    nowhere = f"http://127.0.0.1:{free_port()}"
    with asgi_server({**split_env, "INFERENCE_WORKER_URLS": nowhere}, tmp_path / "web.log") as url:
        socket = await open_chat(url, cookie)
        done = await asyncio.wait_for(ask(socket, conversation), 30)
        await socket.close()
    assert done["status"] == "failed"
    assert done["error"] == USER_ERRORS[Failure.UNREACHABLE] and nowhere not in done["error"]
    stored = await sync_to_async(Message.objects.get)(pk=done["id"])
    assert nowhere in stored.error_detail
