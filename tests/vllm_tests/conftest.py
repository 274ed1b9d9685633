"""A real vLLM CPU server, started once per test session (skipped where vLLM is not
installed: `scripts/test.sh` installs it, so CI runs these)."""

from __future__ import annotations

import pytest

from tests.support.vllm import vllm_installed, vllm_server


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "vllm_tests" in str(item.path):
            item.add_marker(pytest.mark.vllm)
            if not vllm_installed():
                item.add_marker(pytest.mark.skip(reason="vLLM is not installed (.venv-vllm)"))


@pytest.fixture(scope="session")
def vllm_url(smollm2_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    with vllm_server(smollm2_dir, log) as (url, _):
        yield url


@pytest.fixture
def vllm_settings(settings, smollm2_dir, vllm_url):
    settings.CHAT_MODEL = str(smollm2_dir)
    settings.INFERENCE_BACKEND = "vllm"
    settings.VLLM_URLS = [vllm_url]
    settings.CHAT_RATE_LIMIT_MESSAGES = 1000
    return settings


@pytest.fixture
def vllm_app(vllm_settings):
    from live.engines import chat_engine
    from live.routing import websocket_application

    engine = chat_engine()
    yield websocket_application(engine)
    engine.close()
