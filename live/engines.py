"""Which engine serves this process, built from settings (``INFERENCE_MODE``).

``local`` (the default): each web process owns its model's engine, llama.cpp
(``LlamaCppEngine``) or transformers (``LocalEngine``) as ``INFERENCE_ENGINE``
says: ``auto`` takes llama.cpp when the chat model has a GGUF file.
``workers``: web processes stream from LoopChat's inference workers at
``INFERENCE_WORKER_URLS`` (``python -m live.inference_worker``) over the
OpenAI protocol, with the OpenAIEngine that also talks to vLLM.
``INFERENCE_BACKEND=vllm`` overrides both: an OpenAIEngine streams from the
OpenAI-compatible servers at ``VLLM_URLS`` and hot-loads trained versions there.

config/asgi.py builds the engines once per process and hands them to the
consumers; nothing else holds a global engine.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from live.metrics.web import replica_reply_counted
from llm.engine.base import Engine
from llm.engine.choice import in_process_engine
from llm.engine.openai_compat import OpenAIEngine
from llm.engine.threaded import ThreadedEngine
from llm.loading import model_label


def chat_engine() -> Engine:
    """The engine web consumers use, per ``INFERENCE_BACKEND`` and ``INFERENCE_MODE``."""
    if settings.INFERENCE_BACKEND == "vllm":
        return vllm_engine()
    if settings.INFERENCE_MODE == "workers":
        label = model_label(settings.CHAT_MODEL)
        return OpenAIEngine(
            settings.INFERENCE_WORKER_URLS,
            model=label,
            base_label=label,
            max_adapters=16,  # a worker only maps names to folders; its engine evicts
            read_timeout=settings.INFERENCE_READ_TIMEOUT,
            on_reply=replica_reply_counted,
        )
    return local_engine()


def local_engine(model: str | None = None) -> ThreadedEngine:
    """This process's own model, ``settings.CHAT_MODEL`` unless told another, on the
    engine ``INFERENCE_ENGINE`` names (llm.engine.choice).

    Nothing loads until the engine starts (its first request, or ``start``).
    """
    try:
        return in_process_engine(
            model or settings.CHAT_MODEL,
            choice=settings.INFERENCE_ENGINE,
            cache_dir=settings.MODEL_CACHE_DIR,
            device=settings.MODEL_DEVICE or None,
            threads=settings.MODEL_THREADS,
            max_batch_size=settings.ENGINE_MAX_BATCH_SIZE,
            weights=settings.LLAMACPP_WEIGHTS,
        )
    except ValueError as error:
        raise ImproperlyConfigured(f"INFERENCE_ENGINE / LLAMACPP_WEIGHTS: {error}") from error


def vllm_engine() -> OpenAIEngine:
    return OpenAIEngine(
        settings.VLLM_URLS,
        model=settings.VLLM_MODEL,
        base_label=model_label(settings.CHAT_MODEL),
        api_key=settings.VLLM_API_KEY,
        max_adapters=settings.VLLM_MAX_ADAPTERS,
        read_timeout=settings.INFERENCE_READ_TIMEOUT,
        on_reply=replica_reply_counted,
    )


def preload(engine: Engine) -> None:
    """Start loading the model as the web server starts, not on the first message."""
    local = settings.INFERENCE_MODE == "local" and settings.INFERENCE_BACKEND == "local"
    if settings.ENGINE_PRELOAD and local:
        engine.start()
