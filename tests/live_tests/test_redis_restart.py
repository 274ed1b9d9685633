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


async def test_sockets_workers_and_replies_outlive_redis_restarts(
    alice, redis_server, tiny_model_4k_dir, tmp_path
):
    """Two restarts under the same processes: Redis down 0.1 s, then 5 s."""
    env = process_env(
        REDIS_URL=redis_server.url,
        INFERENCE_MODE="workers",
        CHAT_MODEL=str(tiny_model_4k_dir),
        CHAT_RATE_LIMIT_MESSAGES="1000",
    )
    cookie, ids = await sync_to_async(_conversations)(alice, 8, 20)
    _, long_ids = await sync_to_async(_conversations)(alice, 2, 600)
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
        replies = []
        for downtime, long_id in zip((0.1, 5.0), long_ids, strict=True):
            streaming = await open_chat(url, cookie)
            await _send(streaming, long_id, "Tell me a long story.")
            await frames_until(streaming, "token")

            redis_server.stop()
            await asyncio.sleep(downtime)
            if downtime >= 3:
                # Down past the grace period: a message is refused, the socket stays open.
                await _send(idle[0], ids.pop())
                refused = await next_frame(idle[0], timeout=15)
                assert refused["type"] == "error" and refused["code"] == "service_unavailable"
                assert await _ping(idle[0])
            await asyncio.to_thread(redis_server.start)

            # The reply that was streaming needed no Redis: it runs to its end.
            done = (await frames_until(streaming, "reply_done"))[-1]["message"]
            assert done["status"] == "complete", (downtime, done["error"])
            replies.append(done)
            for socket in idle:
                assert await _ping(socket), downtime
                reply = await _complete(socket, ids.pop())
                assert reply["status"] == "complete", (downtime, reply["error"])
                replies.append(reply)
            await streaming.close()
            alive = [p.poll() is None for p in (worker, web, celery, beat)]
            assert all(alive), (downtime, alive)
        for socket in idle:
            await socket.close()
    for reply in replies:  # nothing stored was lost
        stored = await sync_to_async(Message.objects.get)(pk=reply["id"])
        assert (stored.status, stored.content) == ("complete", reply["content"])
    assert await sync_to_async(Message.objects.filter(role="assistant").count)() == 8
