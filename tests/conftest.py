"""Shared fixtures: personas, the tiny model, a real ASGI server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

from tests.support.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    return Path(os.environ.get("MODEL_CACHE_DIR", REPO / ".cache" / "models"))


@pytest.fixture(scope="session")
def tiny_model_dir(model_cache_dir: Path) -> Path:
    """A tiny random Llama with SmolLM2's tokenizer, saved once per cache."""
    return build_tiny_model(model_cache_dir / "tiny-random-llama", model_cache_dir)


@pytest.fixture(scope="session")
def tiny_model_4k_dir(model_cache_dir: Path) -> Path:
    """The tiny model with room for replies of a few thousand tokens."""
    return build_tiny_model(
        model_cache_dir / "tiny-random-llama-4k", model_cache_dir, context_window=4096
    )


@pytest.fixture(scope="session")
def smollm2_dir(model_cache_dir: Path) -> Path:
    from llm.loading import prepare_embedded_model

    return prepare_embedded_model(model_cache_dir)


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def tiny_engine_settings(settings, tiny_model_dir):
    """Point the app's settings (the model servers and training use) at the tiny model."""
    settings.CHAT_MODEL = str(tiny_model_dir)
    settings.INFERENCE_MODE = "local"
    return settings


@pytest.fixture
def build_engine():
    """Builds this process's kind of engine for a model folder; closed after the test."""
    from live.engines import local_engine

    engines = []

    def build(model: Path | str):
        engines.append(local_engine(str(model)))
        return engines[-1]

    yield build
    for engine in engines:
        engine.close()


@pytest.fixture
def tiny_engine(tiny_engine_settings, build_engine, tiny_model_dir):
    return build_engine(tiny_model_dir)


@pytest.fixture
def app(tiny_engine):
    """The websocket application as config/asgi.py builds it, on the tiny model."""
    from live.routing import websocket_application

    return websocket_application(tiny_engine)


def pytest_configure(config) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # Model, training and test settings never need more than the machine's cores.
    assert settings.configured
