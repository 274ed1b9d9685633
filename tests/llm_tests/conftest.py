"""Fixtures for the model core: a loaded tiny model and one engine per module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llm.engine.local import LocalEngine
from llm.loading import LoadedModel, load_model
from tests.llm_tests.streams import start_engine


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """Run the model core on one intra-op thread during these tests.

    The tiny model's ops are too small to gain from a second thread, and on a
    shared 2-core machine (web, workers, other test runs) the two threads mostly
    wait for each other: measured 4-10x slower under load.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_loaded(tiny_model_dir: Path, model_cache_dir: Path) -> LoadedModel:
    """The tiny model for tests that drive the model core without an engine."""
    return load_model(str(tiny_model_dir), model_cache_dir, device="cpu")


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir: Path, model_cache_dir: Path) -> LocalEngine:
    """One engine on the tiny model, shared by a module's tests.

    Tests must leave it as they found it: no adapters loaded, no request left running.
    """
    return start_engine(tiny_model_dir, model_cache_dir)


@pytest.fixture
def fresh_engine(tiny_model_dir: Path, model_cache_dir: Path) -> LocalEngine:
    """An engine of the test's own on the tiny model, for tests that change its model."""
    return start_engine(tiny_model_dir, model_cache_dir)
