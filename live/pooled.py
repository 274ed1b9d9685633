"""``in_pool``: run a sync call off the event loop on the shared thread pool, whose
threads keep their database connections (and, unlike the one sync thread of a
consumer or a request, let no other call wait behind a slow one).

Channels' ``database_sync_to_async`` is thread-sensitive by default: it runs the
call on the request's own thread, and Django makes one for each HTTP request (its
``ThreadSensitiveContext``). An API completion would then start a new thread and
open a new database connection on the way to its first token (PostgreSQL's
connection set-up alone is milliseconds). Use it for calls that each stand on their
own (short reads and writes, a Redis check, a search), with no transaction spanning
two of them.
"""

from __future__ import annotations

import functools

from channels.db import database_sync_to_async

in_pool = functools.partial(database_sync_to_async, thread_sensitive=False)
