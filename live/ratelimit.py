"""A fixed-window counter per user in the shared cache (Redis), that outlives a Redis blip.

Redis restarts (upgrades, failover, an out-of-memory kill). A check that finds it
down retries with backoff for ``REDIS_GRACE_SECONDS``; past that the message is
refused as ``service_unavailable`` (nothing saved), and the socket stays open: the
next message works as soon as Redis answers again (redis-py reconnects on use).
"""

from __future__ import annotations

import asyncio
import time

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from chat.refusals import Refusal
from live.pooled import in_pool


def generation_allowed(*, user_id: int) -> float | None:
    """Count one generation; return None if allowed, else seconds until allowed."""
    window = settings.CHAT_RATE_LIMIT_WINDOW_SECONDS
    now = time.time()
    key = f"chat-rate:{user_id}:{int(now // window)}"
    cache.add(key, 0, timeout=window * 2)
    if cache.incr(key) <= settings.CHAT_RATE_LIMIT_MESSAGES:
        return None
    return round(window - now % window, 1)


async def generation_check(*, user_id: int) -> float | None:
    """``generation_allowed``, waiting out a Redis blip; ``Refusal`` if Redis stays down."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.REDIS_GRACE_SECONDS
    delay = 0.05
    while True:
        try:
            # On the shared thread pool: a retry must not hold the one sync thread.
            return await in_pool(generation_allowed)(user_id=user_id)
        except RedisError:
            if loop.time() + delay > deadline:
                raise Refusal(
                    "service_unavailable",
                    "LoopChat cannot reach Redis just now; the message was not sent. "
                    "Try again in a few seconds.",
                    retry_after=settings.REDIS_GRACE_SECONDS,
                ) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
