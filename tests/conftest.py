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
    """Point the app's engine at the tiny model, fresh for this test."""
    from chat import inference

    settings.CHAT_MODEL = str(tiny_model_dir)
    settings.INFERENCE_MODE = "local"
    inference.reset_engine()
    yield settings
    inference.reset_engine()


def pytest_configure(config) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # Model, training and test settings never need more than the machine's cores.
    assert settings.configured
