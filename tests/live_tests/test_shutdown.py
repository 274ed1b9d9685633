"""A web process that stops mid-reply: told to (SIGTERM, a deploy) it saves the reply
as stopped; killed (SIGKILL, out of memory) the last checkpoint survives."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import ExitStack

import pytest
from django.db import connection

from chat import services
from chat.models import Message
from chat.services import stale_replies_fail
from tests.support.servers import app_env, asgi_server, asgi_server_process
from tests.support.ws import next_frame, open_chat, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def reply_then(url: str, cookie: str, conversation_id: int, tokens: int, stop) -> str:
    """Start a reply, read ``tokens`` tokens, call ``stop(text read)`` in a thread;
    return the text read."""
    socket = await open_chat(url, cookie)
    frame = {"type": "send", "conversation": conversation_id, "content": "Hi", "parent": None}
    await socket.send(json.dumps(frame))
    received = []
    while len(received) < tokens:
        frame = await next_frame(socket)
        if frame["type"] == "token":
            received.append(frame["text"])
    await asyncio.to_thread(stop, "".join(received))
    return "".join(received)


def test_it_saves_the_partial_reply_as_stopped_when_the_server_shuts_down(
    alice, tiny_model_4k_dir, tmp_path
):
    conversation = services.conversation_create(owner=alice)
    env = app_env(tiny_model_4k_dir, CHAT_DEFAULT_MAX_NEW_TOKENS="3000")
    with ExitStack() as server:
        url = server.enter_context(asgi_server(env, tmp_path / "server.log"))

        def shut_down(_):
            server.close()  # SIGTERM, then wait for the process to exit

        received = asyncio.run(
            reply_then(url, session_cookie(alice), conversation.pk, 5, shut_down)
        )

    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert reply.status == Message.Status.STOPPED
    assert reply.content.startswith(received)
    assert reply.content


def test_a_killed_server_leaves_the_last_checkpoint_then_the_reply_is_marked_failed(
    alice, tiny_model_4k_dir, tmp_path
):
    conversation = services.conversation_create(owner=alice)
    env = app_env(
        tiny_model_4k_dir, CHAT_DEFAULT_MAX_NEW_TOKENS="3000", CHAT_REPLY_CHECKPOINT_SECONDS="0.3"
    )
    with asgi_server_process(env, tmp_path / "server.log") as (url, process):

        def kill_after_a_checkpoint(received: str):
            saved = Message.objects.filter(
                role=Message.Role.ASSISTANT, content__startswith=received
            )
            deadline = time.monotonic() + 20
            while not saved.exclude(content="").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            connection.close()  # this thread's
            process.kill()
            process.wait()

        received = asyncio.run(
            reply_then(url, session_cookie(alice), conversation.pk, 3, kill_after_a_checkpoint)
        )

    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert reply.status == Message.Status.STREAMING
    assert reply.content.startswith(received)  # saved while it was being written
    assert stale_replies_fail(older_than_seconds=0) == 1
    reply.refresh_from_db()
    assert reply.status == Message.Status.FAILED
    assert reply.content and "server stopped" in reply.error
