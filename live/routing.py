"""The websocket side of the ASGI application, around the engine it serves with."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from live.consumers import ChatConsumer
from live.origins import SameOriginValidator
from llm.engine.base import Engine


def websocket_application(engine: Engine):
    """``/ws/chat/``: same origin (scheme, host, port) from an allowed host,
    session-authenticated, replies from ``engine``."""
    routes = [path("ws/chat/", ChatConsumer.as_asgi(engine=engine))]
    authenticated = AuthMiddlewareStack(URLRouter(routes))
    return SameOriginValidator(AllowedHostsOriginValidator(authenticated))
