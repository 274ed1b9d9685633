"""A real vLLM CPU server, started once per test session (skipped where vLLM is not
installed: `scripts/test.sh` installs it, so CI runs these)."""

from __future__ import annotations

import pytest

from tests.support.vllm import vllm_installed, vllm_servers


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "vllm_tests" in str(item.path):
            item.add_marker(pytest.mark.vllm)
            if not vllm_installed():
                item.add_marker(pytest.mark.skip(reason="vLLM is not installed (.venv-vllm)"))


@pytest.fixture(scope="session")
def vllm_pair(smollm2_dir, tmp_path_factory):
    """Two servers, started together once: the second is for the test that kills one."""
    logs = tmp_path_factory.mktemp("vllm")
    with vllm_servers(smollm2_dir, [logs / "first.log", logs / "second.log"]) as servers:
        yield servers


@pytest.fixture(scope="session")
def vllm_url(vllm_pair):
    return vllm_pair[0][0]


@pytest.fixture
def vllm_settings(settings, smollm2_dir, vllm_url):
    settings.CHAT_MODEL = str(smollm2_dir)
    settings.INFERENCE_BACKEND = "vllm"
    settings.VLLM_URLS = [vllm_url]
    settings.CHAT_RATE_LIMIT_MESSAGES = 1000
    # A full 2,048-token window prefills in silence: on this 2-core CPU that passed
    # the 30 s default on a slow day. A killed replica still fails at once (its socket closes).
    settings.INFERENCE_READ_TIMEOUT = 120.0
    return settings


@pytest.fixture
def vllm_app(vllm_settings):
    from live.engines import chat_engine
    from live.routing import websocket_application

    engine = chat_engine()
    yield websocket_application(engine)
    engine.close()
