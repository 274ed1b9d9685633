"""A Django test client for the OpenAI-compatible API, with the engine in each
request's scope as config/asgi.py puts it there."""

from __future__ import annotations

from django.test import AsyncClient

from live.api.openai import ENGINE_SCOPE_KEY
from llm.engine.base import Engine


def api_client(engine: Engine) -> AsyncClient:
    client = AsyncClient()
    handler = client.handler

    async def with_engine(scope, *args):
        return await handler({**scope, ENGINE_SCOPE_KEY: engine}, *args)

    client.handler = with_engine
    return client
