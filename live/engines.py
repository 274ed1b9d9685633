"""Which engine serves this process, built from settings (``INFERENCE_MODE``).

``local`` (the default): each web process owns a LocalEngine.
``workers``: web processes hold a RemoteEngine that sends each request over
the Redis channel layer to the ``inference`` channel; processes running
``python manage.py runworker inference`` serve it (``live.workers``).

config/asgi.py builds the engines once per process and hands them to the
consumers; nothing else holds a global engine.
"""

from __future__ import annotations

from channels.layers import get_channel_layer
from django.conf import settings

from llm.engine.base import Engine
from llm.engine.local import LocalEngine
from llm.engine.remote import RemoteEngine
from llm.loading import load_model


def chat_engine(worker_engine: LocalEngine) -> Engine:
    """The engine web consumers use: ``worker_engine`` itself in local mode."""
    if settings.INFERENCE_MODE == "workers":
        return RemoteEngine(
            get_channel_layer, settings.INFERENCE_CHANNEL, settings.INFERENCE_START_TIMEOUT
        )
    return worker_engine


def local_engine(model: str | None = None) -> LocalEngine:
    """This process's own model, ``settings.CHAT_MODEL`` unless told another.

    Nothing loads until the engine starts (its first request, or ``start``).
    """
    return LocalEngine(
        lambda: load_model(
            model or settings.CHAT_MODEL,
            settings.MODEL_CACHE_DIR,
            settings.MODEL_DEVICE or None,
            threads=settings.MODEL_THREADS,
        ),
        max_batch_size=settings.ENGINE_MAX_BATCH_SIZE,
    )


def preload(engine: Engine) -> None:
    """Start loading the model as the web server starts, not on the first message."""
    if settings.ENGINE_PRELOAD and settings.INFERENCE_MODE == "local":
        engine.start()
