"""The ASGI application around the engine it serves with: the websocket side, and the
engine handed to HTTP views (the OpenAI-compatible API streams from it)."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from live.api.openai import ENGINE_SCOPE_KEY
from live.consumers import ChatConsumer
from live.origins import SameOriginValidator
from llm.engine.base import Engine


def websocket_application(engine: Engine):
    """``/ws/chat/``: same origin (scheme, host, port) from an allowed host,
    session-authenticated, replies from ``engine``."""
    routes = [path("ws/chat/", ChatConsumer.as_asgi(engine=engine))]
    authenticated = AuthMiddlewareStack(URLRouter(routes))
    return SameOriginValidator(AllowedHostsOriginValidator(authenticated))


def http_application(django_application, engine: Engine):
    """Django's HTTP application, each request's scope carrying ``engine``
    (``live.api.openai`` reads it: the process's one engine, as the consumers')."""

    async def application(scope, receive, send):
        await django_application({**scope, ENGINE_SCOPE_KEY: engine}, receive, send)

    return application
