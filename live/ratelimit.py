"""A fixed-window counter per user in the shared cache (Redis)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache


def generation_allowed(*, user_id: int) -> float | None:
    """Count one generation; return None if allowed, else seconds until allowed."""
    window = settings.CHAT_RATE_LIMIT_WINDOW_SECONDS
    now = time.time()
    key = f"chat-rate:{user_id}:{int(now // window)}"
    cache.add(key, 0, timeout=window * 2)
    if cache.incr(key) <= settings.CHAT_RATE_LIMIT_MESSAGES:
        return None
    return round(window - now % window, 1)
