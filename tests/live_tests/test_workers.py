"""The split mode: a web server streaming from separate inference workers over the
OpenAI protocol (``python -m live.inference_worker``), all real processes."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest
from asgiref.sync import sync_to_async

from chat import services
from chat.models import Message
from tests.support.servers import asgi_server, free_port, inference_worker, process_env
from tests.support.ws import frames_until, open_chat, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def split_env(tiny_model_4k_dir):
    # A long window: a 3000-token reply is still running when stop arrives.
    return process_env(INFERENCE_MODE="workers", CHAT_MODEL=str(tiny_model_4k_dir))


def _setup(alice, max_new_tokens=3000):
    conversation = services.conversation_create(owner=alice)
    services.conversation_update(
        conversation=conversation, changes={"max_new_tokens": max_new_tokens}
    )
    return session_cookie(alice), conversation


async def _send(socket, conversation, content="Hi"):
    frame = {"type": "send", "conversation": conversation.pk, "content": content, "parent": None}
    await socket.send(json.dumps(frame))


async def test_it_streams_through_a_separate_inference_worker(alice, split_env, tmp_path):
    """Tokens come from the worker process; stop reaches the worker (its request ends)."""
    cookie, conversation = await sync_to_async(_setup)(alice)
    with inference_worker(split_env, tmp_path / "worker.log") as (worker_url, _):
        web_env = {**split_env, "INFERENCE_WORKER_URLS": worker_url}
        with asgi_server(web_env, tmp_path / "web.log") as url:
            socket = await open_chat(url, cookie)
            await _send(socket, conversation)
            frames = await frames_until(socket, "token")
            assert [frame["type"] for frame in frames[:3]] == [
                "message",
                "conversation",
                "reply_started",
            ]
            await socket.send(json.dumps({"type": "stop"}))
            done = (await frames_until(socket, "reply_done"))[-1]["message"]
            assert done["status"] == "stopped"
            assert 0 < done["stats"]["completion_tokens"] < 3000
            assert done["model_version"] == "tiny-random-llama-4k"

            # A second, complete (shorter) reply over the same worker.
            await sync_to_async(services.conversation_update)(
                conversation=conversation, changes={"max_new_tokens": 30}
            )
            await socket.send(json.dumps({"type": "regenerate", "message": done["id"]}))
            sibling = (await frames_until(socket, "reply_done"))[-1]["message"]
            assert sibling["status"] == "complete"
            assert sibling["parent"] == done["parent"]
            await socket.close()
    reply = await sync_to_async(Message.objects.get)(pk=sibling["id"])
    assert reply.prompt_messages[-1] == {"role": "user", "content": "Hi"}
    assert reply.sampling["max_new_tokens"] == 30
    assert 0 < reply.completion_tokens <= 30
    assert reply.prompt_tokens > 0  # the worker says what the model saw


async def test_it_fails_the_reply_at_once_when_no_worker_answers(alice, split_env, tmp_path):
    """Without a worker, the reply fails with a clear error instead of hanging."""
    cookie, conversation = await sync_to_async(_setup)(alice)
    split_env["INFERENCE_WORKER_URLS"] = f"http://127.0.0.1:{free_port()}"
    with asgi_server(split_env, tmp_path / "web.log") as url:
        socket = await open_chat(url, cookie)
        started = time.monotonic()
        await _send(socket, conversation)
        done = (await asyncio.wait_for(frames_until(socket, "reply_done"), 30))[-1]["message"]
        waited = time.monotonic() - started
        await socket.close()
    assert done["status"] == "failed" and waited < 5
    assert done["error"].startswith("No model server is answering")


async def test_a_worker_killed_mid_reply_fails_it_within_5_s_and_the_next_goes_elsewhere(
    alice, split_env, tmp_path
):
    cookie, conversation = await sync_to_async(_setup)(alice)
    with (
        inference_worker(split_env, tmp_path / "doomed.log") as (doomed_url, doomed),
        inference_worker(split_env, tmp_path / "spare.log") as (spare_url, _),
    ):
        # Both idle: the first listed takes the reply.
        web_env = {**split_env, "INFERENCE_WORKER_URLS": f"{doomed_url},{spare_url}"}
        with asgi_server(web_env, tmp_path / "web.log") as url:
            socket = await open_chat(url, cookie)
            await _send(socket, conversation)
            streamed = [f for f in await frames_until(socket, "token") if f["type"] == "token"]
            doomed.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            done = (await frames_until(socket, "reply_done"))[-1]["message"]
            waited = time.monotonic() - killed_at
            assert done["status"] == "failed" and waited < 5, (done, waited)
            assert done["error"].startswith("The model server stopped answering")
            assert done["content"].startswith("".join(f["text"] for f in streamed))
            assert done["stats"]["completion_tokens"] >= len(streamed)

            await sync_to_async(services.conversation_update)(
                conversation=conversation, changes={"max_new_tokens": 20}
            )
            await socket.send(json.dumps({"type": "regenerate", "message": done["id"]}))
            again = (await frames_until(socket, "reply_done"))[-1]["message"]
            assert again["status"] == "complete", again["error"]
            await socket.close()
        assert doomed.wait(timeout=10) == -signal.SIGKILL
