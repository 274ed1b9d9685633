"""Websocket origin check: scheme, host and port, as Django's CSRF origin check compares.

Channels' ``AllowedHostsOriginValidator`` compares the Origin's host with
``ALLOWED_HOSTS`` and ignores the port, so a page on ``http://127.0.0.1:8766``
could open sockets on a server at 8765. Here the Origin must equal the socket's
own origin (``http`` for ``ws``, ``https`` for ``wss``, and the Host header), or be
listed in ``CSRF_TRUSTED_ORIGINS``.
"""

from __future__ import annotations

from django.conf import settings


class SameOriginValidator:
    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not _same_origin(scope):
            # Refuse the handshake (HTTP 403), as Channels' validators do.
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 4403})
            return
        await self.application(scope, receive, send)


def _same_origin(scope) -> bool:
    headers = {
        name.decode("latin1").lower(): value.decode("latin1")
        for name, value in scope.get("headers", [])
    }
    origin, host = headers.get("origin"), headers.get("host")
    if not origin:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return host is not None and origin.lower() == f"{scheme}://{host}".lower()
