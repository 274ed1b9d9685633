"""Which web process streams a reply, and failing the replies of processes that are gone.

Each web process has an identity, ``host:pid:start`` (``host``: the host name and
its pid namespace, so containers that share a name are told apart; ``start``: the
process's start time in clock ticks, from ``/proc``, so a reused pid reads as
another process). It
marks the replies it streams with it (``Message.streamed_by``) and keeps a heartbeat
key in Redis (the cache) that expires after three missed beats. A sweep runs as the
process starts and then every ``CHAT_LIVENESS_SECONDS``; it fails the streaming
replies of a process that is gone, keeping their text:

- on this host, at once: its pid runs no more, or runs another process;
- on another host: its heartbeat key is missing *and* its newest reply has not been
  checkpointed for longer than a live process ever leaves one (the checkpoint
  interval plus the key's lifetime), so a Redis restart that lost every key fails
  nothing that lives.

Beat's stale-reply task (``chat.fail_stale_replies``) stays the backstop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from django.utils import timezone

from chat import selectors, services

logger = logging.getLogger(__name__)

_started: set[int] = set()  # pids whose sweep thread runs (one per process)


def process_identity() -> str:
    """This process: ``host:pid:start``."""
    pid = os.getpid()
    return f"{_host()}:{pid}:{_start_ticks(pid)}"


def liveness_start() -> None:
    """Beat and sweep from a daemon thread of this process, the first time at once."""
    if os.getpid() in _started or settings.CHAT_LIVENESS_SECONDS <= 0:
        return
    _started.add(os.getpid())
    threading.Thread(target=_run, name="reply-liveness", daemon=True).start()


def liveness_beat() -> None:
    """Say this process is alive, for three beats."""
    ttl = max(1, round(settings.CHAT_LIVENESS_SECONDS * 3))
    cache.set(_key(process_identity()), timezone.now().isoformat(), timeout=ttl)


def orphaned_replies_sweep() -> int:
    """Fail the streaming replies of web processes that are gone; how many were failed."""
    failed = 0
    me = process_identity()
    for identity, latest in selectors.streaming_reply_writers().items():
        reason = None if identity == me else _gone(identity, latest)
        if reason:
            count = services.orphaned_replies_fail(
                streamed_by=identity, detail=f"{reason} (found by web process {me})"
            )
            logger.warning("failed %d replies left streaming: %s", count, reason)
            failed += count
    return failed


def _run() -> None:
    stop = threading.Event()
    while True:
        try:
            liveness_beat()
        except Exception:  # noqa: BLE001 - Redis away: the next beat tries again
            logger.warning("could not write this process's heartbeat", exc_info=True)
        try:
            close_old_connections()
            orphaned_replies_sweep()
        except Exception:  # noqa: BLE001 - the sweep must not end; beat's task remains
            logger.warning("the orphaned-reply sweep failed", exc_info=True)
        finally:
            close_old_connections()
        stop.wait(settings.CHAT_LIVENESS_SECONDS)


def _gone(identity: str, latest: datetime) -> str | None:
    """Why the process ``identity`` is taken for gone; None while it may live."""
    try:
        host, pid, start = identity.rsplit(":", 2)
        int(pid)
    except ValueError:
        return None  # not an identity this module wrote
    if host == _host() and start:
        if _start_ticks(int(pid)) != start:
            return f"web process {identity} is no longer running"
        return None
    grace = settings.CHAT_REPLY_CHECKPOINT_SECONDS + settings.CHAT_LIVENESS_SECONDS * 3
    silent = timezone.now() - latest > timedelta(seconds=grace)
    if silent and cache.get(_key(identity)) is None:
        return f"web process {identity} sent no heartbeat and no checkpoint for {grace:.0f} s"
    return None


def _host() -> str:
    """This host's name, and its pid namespace where /proc tells it: pids are checked
    only among processes that share both."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}@{namespace}"


def _start_ticks(pid: int) -> str:
    """The process's start time since boot, in clock ticks; "" where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22; the command name (field 2, in parentheses) may hold spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def _key(identity: str) -> str:
    return f"web-alive:{identity}"
