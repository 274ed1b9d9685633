"""A Redis restart under load: 32 idle sockets and 4 streaming replies on a real server.

Redis is a private redis-server on its own port, killed and started again
(``--downtime`` seconds, default 1). The baseline, in the same run: how long a
new message takes to start its reply with Redis up.

    .venv/bin/python benchmarks/redis_blip.py [--downtime 1.0] [--idle 32] [--streaming 4]

Prints ``name: value`` lines (sockets kept, replies completed or cleanly failed,
seconds until a new message works after Redis is back) and ends with
``sockets_kept_ratio: <kept ÷ open>``. Targets: 1.0, and a new message within 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.common import make_user, server_env, setup_django  # noqa: E402


async def _send(socket, conversation_id: int, content: str = "Hello!") -> None:
    frame = {"type": "send", "conversation": conversation_id, "content": content, "parent": None}
    await socket.send(json.dumps(frame))


async def _until(socket, types: set[str], timeout: float = 120) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        if frame["type"] in types:
            return frame


async def _alive(socket) -> bool:
    try:
        await socket.send(json.dumps({"type": "ping"}))
        return (await _until(socket, {"pong"}, timeout=10))["type"] == "pong"
    except Exception:  # noqa: BLE001 - a closed socket is what is being counted
        return False


async def _starts(url: str, cookie: str, conversation_id: int) -> bool:
    """A new socket, a new message: does its reply start?"""
    from tests.support.ws import open_chat

    socket = await open_chat(url, cookie)
    try:
        await _send(socket, conversation_id)
        frame = await _until(socket, {"reply_started", "error"}, timeout=30)
        if frame["type"] == "reply_started":  # it works: stop it, do not wait it out
            await socket.send(json.dumps({"type": "stop"}))
            await _until(socket, {"reply_done"})
        return frame["type"] == "reply_started"
    finally:
        await socket.close()


async def run(url: str, cookie: str, conversations: list[int], redis, options) -> dict:
    from tests.support.ws import open_chat

    started = time.perf_counter()
    assert await _starts(url, cookie, conversations.pop())
    baseline = time.perf_counter() - started
    idle = [await open_chat(url, cookie) for _ in range(options.idle)]
    streaming = [await open_chat(url, cookie) for _ in range(options.streaming)]
    for socket in streaming:
        await _send(socket, conversations.pop(), "Write a long story about the sea.")
    for socket in streaming:
        await _until(socket, {"token"})

    await asyncio.to_thread(redis.restart, options.downtime)
    back = time.perf_counter()
    waited = None
    while time.perf_counter() - back < 60:
        if await _starts(url, cookie, conversations.pop()):
            waited = time.perf_counter() - back
            break
        await asyncio.sleep(0.2)
    endings = [await _until(socket, {"reply_done"}) for socket in streaming]
    kept = sum([await _alive(socket) for socket in idle + streaming])
    for socket in idle + streaming:
        await socket.close()
    return {
        "baseline": baseline,
        "kept": kept,
        "open": len(idle) + len(streaming),
        "statuses": [frame["message"]["status"] for frame in endings],
        "waited": waited,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--downtime", type=float, default=1.0)
    parser.add_argument("--idle", type=int, default=32)
    parser.add_argument("--streaming", type=int, default=4)
    options = parser.parse_args()
    workdir = setup_django()
    from tests.support.redis_server import PrivateRedis
    from tests.support.servers import asgi_server

    redis = PrivateRedis(workdir / "redis.log")
    redis.start()
    try:
        cookie, conversations = make_user("bench", max_new_tokens=160, count=200)
        ids = [conversation.pk for conversation in conversations]
        env = server_env(REDIS_URL=redis.url)
        with asgi_server(env, workdir / "server.log") as url:
            figures = asyncio.run(run(url, cookie, ids, redis, options))
    finally:
        redis.stop()
    statuses = figures["statuses"]
    clean = sum(status in ("complete", "stopped", "failed") for status in statuses)
    print(f"redis_downtime_s: {options.downtime}")
    print(f"baseline_new_message_s: {figures['baseline']:.2f}")
    print(f"sockets_open: {figures['open']}")
    print(f"sockets_kept: {figures['kept']}")
    print(f"replies_streaming: {len(statuses)}")
    print(f"replies_completed: {statuses.count('complete')}")
    print(f"replies_cleanly_failed: {clean - statuses.count('complete')}")
    waited = figures["waited"]
    print(f"new_message_after_redis_back_s: {'never' if waited is None else f'{waited:.2f}'}")
    print(f"sockets_kept_ratio: {figures['kept'] / figures['open']:.3f}")


if __name__ == "__main__":
    main()
