"""A web process that is told to stop (SIGTERM, a deploy) keeps what it was writing."""

from __future__ import annotations

import asyncio
import json
from contextlib import ExitStack

import pytest

from chat import services
from chat.models import Message
from tests.support.servers import asgi_server, process_env
from tests.support.ws import next_frame, open_chat, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_saves_the_partial_reply_as_stopped_when_the_server_shuts_down(
    alice, tiny_model_4k_dir, tmp_path
):
    conversation = services.conversation_create(owner=alice)
    cookie = session_cookie(alice)
    env = process_env(
        CHAT_MODEL=str(tiny_model_4k_dir),
        ENGINE_PRELOAD="1",
        INFERENCE_MODE="local",
        CHAT_DEFAULT_MAX_NEW_TOKENS="3000",
    )
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    received = []

    async def reply_then_shut_down(url: str, stop_server) -> None:
        socket = await open_chat(url, cookie)
        frame = {"type": "send", "conversation": conversation.pk, "content": "Hi", "parent": None}
        await socket.send(json.dumps(frame))
        while len(received) < 5:
            frame = await next_frame(socket)
            if frame["type"] == "token":
                received.append(frame["text"])
        await asyncio.to_thread(stop_server)  # SIGTERM, then wait for the process to exit

    with ExitStack() as server:
        url = server.enter_context(asgi_server(env, tmp_path / "server.log"))
        asyncio.run(reply_then_shut_down(url, server.close))

    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert reply.status == Message.Status.STOPPED
    assert reply.content.startswith("".join(received))
    assert reply.content
