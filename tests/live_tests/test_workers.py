"""The split mode: a web server and a separate inference worker over real Redis."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from chat import services
from chat.models import Message
from tests.support.servers import asgi_server, inference_worker, process_env
from tests.support.ws import frames_until, open_chat, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def split_env(tiny_model_4k_dir, settings):
    # A prefix of its own keeps this test's inference channel away from others.
    return process_env(
        INFERENCE_MODE="workers",
        # A long window: a 3000-token reply is still running when stop arrives.
        CHAT_MODEL=str(tiny_model_4k_dir),
        CHANNEL_PREFIX="loopchat-split-test",
    )


def _setup(alice):
    conversation = services.conversation_create(owner=alice)
    services.conversation_update(conversation=conversation, changes={"max_new_tokens": 3000})
    return session_cookie(alice), conversation


async def test_it_streams_through_a_separate_inference_worker(alice, split_env, tmp_path):
    """Tokens come from the worker process; stop reaches the worker across Redis."""
    cookie, conversation = await sync_to_async(_setup)(alice)
    with (
        asgi_server(split_env, tmp_path / "web.log") as url,
        inference_worker(split_env, tmp_path / "worker.log"),
    ):
        socket = await open_chat(url, cookie)
        await socket.send(
            json.dumps(
                {"type": "send", "conversation": conversation.pk, "content": "Hi", "parent": None}
            )
        )
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


async def test_it_fails_the_reply_when_no_worker_answers(alice, split_env, tmp_path):
    """Without a worker, the reply fails with a clear error instead of hanging."""
    cookie, conversation = await sync_to_async(_setup)(alice)
    split_env["INFERENCE_START_TIMEOUT"] = "2"
    split_env["CHANNEL_PREFIX"] = "loopchat-no-worker-test"
    with asgi_server(split_env, tmp_path / "web.log") as url:
        socket = await open_chat(url, cookie)
        await socket.send(
            json.dumps(
                {"type": "send", "conversation": conversation.pk, "content": "Hi", "parent": None}
            )
        )
        done = (await asyncio.wait_for(frames_until(socket, "reply_done"), 30))[-1]["message"]
        await socket.close()
    assert done["status"] == "failed"
    assert "no inference worker" in done["error"]
