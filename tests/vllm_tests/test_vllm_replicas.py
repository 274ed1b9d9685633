"""Two real vLLM CPU servers behind one engine: equally idle replicas take turns, and
each server's /metrics carries vLLM's own statistics (scripts/vllm_server.sh keeps them)."""

from __future__ import annotations

import httpx
import pytest
from channels.db import database_sync_to_async
from prometheus_client.parser import text_string_to_metric_families

from live.engines import chat_engine
from live.routing import websocket_application
from tests.vllm_tests.test_vllm_serving import ask, conversation_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


async def test_equally_idle_replicas_take_turns(vllm_settings, vllm_pair, alice):
    (first_url, _), (second_url, _) = vllm_pair
    vllm_settings.VLLM_URLS = [first_url, second_url]
    engine = chat_engine()
    app = websocket_application(engine)
    conversation = await database_sync_to_async(conversation_of)(alice, max_new_tokens=4)
    for _ in range(4):
        assert (await ask(app, alice, conversation))[1]["status"] == "complete"
    assert [replica.replies for replica in engine.replicas] == [2, 2]
    engine.close()


def test_each_server_keeps_vllm_statistics(vllm_url):
    text = httpx.get(f"{vllm_url}/metrics", timeout=10).text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert any(name.startswith("vllm:") for name in names), sorted(names)[:20]
