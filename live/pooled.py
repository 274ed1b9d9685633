"""``in_pool``: run a sync database call off the event loop on the shared thread
pool, whose threads keep their database connections.

Channels' ``database_sync_to_async`` is thread-sensitive by default: it runs the
call on the request's own thread, and Django makes one for each HTTP request (its
``ThreadSensitiveContext``). An API completion would then start a new thread and
open a new database connection on the way to its first token (PostgreSQL's
connection set-up alone is milliseconds). Use it for calls that are each one short
read or write of their own, with no transaction spanning two of them.
"""

from __future__ import annotations

import functools

from channels.db import database_sync_to_async

in_pool = functools.partial(database_sync_to_async, thread_sensitive=False)
