"""Redis restarts under a running app: real redis-server (its own port, restarted by the
test), real Uvicorn, a real inference worker (workers mode) and real Celery worker and beat.

Open sockets stay open and work again; a reply streaming through the restart still
ends (it needs no Redis); a message sent while Redis is down is refused as
``service_unavailable`` without closing the socket; every process is still alive.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from chat import services
from chat.models import Message
from tests.support.redis_server import PrivateRedis
from tests.support.servers import asgi_server_process, celery_process, inference_worker, process_env
from tests.support.ws import frames_until, next_frame, open_chat, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


@pytest.fixture
def redis_server(tmp_path):
    server = PrivateRedis(tmp_path / "redis.log")
    server.start()
    yield server
    server.stop()


def _conversations(user, count: int, max_new_tokens: int) -> tuple[str, list[int]]:
    ids = []
    for _ in range(count):
        conversation = services.conversation_create(owner=user)
        services.conversation_update(
            conversation=conversation, changes={"max_new_tokens": max_new_tokens}
        )
        ids.append(conversation.pk)
    return session_cookie(user), ids


async def _send(socket, conversation_id: int, content: str = "Hi") -> None:
    frame = {"type": "send", "conversation": conversation_id, "content": content, "parent": None}
    await socket.send(json.dumps(frame))


async def _ping(socket) -> bool:
    await socket.send(json.dumps({"type": "ping", "nonce": "p"}))
    return (await next_frame(socket, timeout=10))["type"] == "pong"


async def _complete(socket, conversation_id: int) -> dict:
    await _send(socket, conversation_id)
    return (await frames_until(socket, "reply_done"))[-1]["message"]


@pytest.mark.parametrize("downtime", [0.1, 5.0])
async def test_sockets_workers_and_replies_outlive_a_redis_restart(
    alice, redis_server, tiny_model_4k_dir, tmp_path, downtime
):
    env = process_env(
        REDIS_URL=redis_server.url,
        INFERENCE_MODE="workers",
        CHAT_MODEL=str(tiny_model_4k_dir),
        CHAT_RATE_LIMIT_MESSAGES="1000",
    )
    cookie, ids = await sync_to_async(_conversations)(alice, 5, 20)
    _, (long_id,) = await sync_to_async(_conversations)(alice, 1, 3000)
    with (
        inference_worker(env, tmp_path / "worker.log") as (worker_url, worker),
        asgi_server_process({**env, "INFERENCE_WORKER_URLS": worker_url}, tmp_path / "web.log") as (
            url,
            web,
        ),
        celery_process("worker", env, tmp_path / "celery.log") as celery,
        celery_process("beat", env, tmp_path / "beat.log") as beat,
    ):
        idle = [await open_chat(url, cookie) for _ in range(3)]
        streaming = await open_chat(url, cookie)
        await _send(streaming, long_id, "Tell me a long story.")
        await frames_until(streaming, "token")

        redis_server.stop()
        await asyncio.sleep(downtime)
        if downtime >= 3:
            # Down past the grace period: a new message is refused, the socket stays open.
            await _send(idle[0], ids[4])
            refused = await next_frame(idle[0], timeout=15)
            assert refused["type"] == "error" and refused["code"] == "service_unavailable"
            assert await _ping(idle[0])
        await asyncio.to_thread(redis_server.start)

        # The reply that was streaming needed no Redis: it runs to its end.
        done = (await frames_until(streaming, "reply_done"))[-1]["message"]
        assert done["status"] in ("complete", "stopped", "failed")
        assert done["status"] == "complete", done["error"]
        for index, socket in enumerate(idle):
            assert await _ping(socket)
            reply = await _complete(socket, ids[index])
            assert reply["status"] == "complete", reply["error"]
        for socket in [*idle, streaming]:
            await socket.close()
        assert all(p.poll() is None for p in (worker, web, celery, beat)), "a process died"
    stored = await sync_to_async(Message.objects.get)(pk=done["id"])
    assert stored.status == "complete" and stored.content == done["content"]
    assert await sync_to_async(Message.objects.filter(role="assistant").count)() == 4
