"""Answers from the key owner's library through the OpenAI-compatible API: the opt-in
``documents`` field, the sources in the response (whole and streamed), and nobody
else's library."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from django.test import AsyncClient

from chat import keys
from chat.models import Message
from tests.documents_tests.conftest import MANUAL
from tests.support.api import api_client

pytestmark = pytest.mark.django_db(transaction=True)

QUESTION = "How many months does the Kettle K-40 warranty last?"


@pytest.fixture
def api(tiny_engine) -> AsyncClient:
    """A client whose requests reach the views with the engine, as config/asgi.py hands it."""
    return api_client(tiny_engine)


async def ask(api: AsyncClient, key: str, **fields) -> dict | list[dict]:
    body = {
        "model": "loopchat",
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 8,
        "temperature": 0,
        **fields,
    }
    response = await api.post(
        "/v1/chat/completions",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.content
    if not fields.get("stream"):
        return response.json()
    text = b"".join([part async for part in response.streaming_content]).decode()
    events = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data:")]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


async def test_documents_true_answers_from_the_owners_library_with_its_sources(api, alice, upload):
    document = await database_sync_to_async(upload)(alice, "kettle.md", MANUAL)
    key = (await database_sync_to_async(keys.api_key_create)(owner=alice)).secret

    answer = await ask(api, key, documents=True)
    sources = answer["sources"]
    assert sources and {source["document"] for source in sources} == {document.pk}
    assert any("27 months" in source["text"] for source in sources)
    reply = await database_sync_to_async(Message.objects.get)(pk=answer["id"].split("-")[1])
    assert reply.grounded and reply.sources == sources
    assert "27 months" in json.dumps(reply.prompt_messages)

    chunks = await ask(api, key, documents=True, stream=True)
    finish = [
        chunk for chunk in chunks if chunk["choices"] and chunk["choices"][0]["finish_reason"]
    ]
    assert len(finish) == 1 and finish[0]["sources"]
    assert {source["document"] for source in finish[0]["sources"]} == {document.pk}


async def test_without_documents_the_library_is_left_alone(api, alice, upload):
    await database_sync_to_async(upload)(alice, "kettle.md", MANUAL)
    key = (await database_sync_to_async(keys.api_key_create)(owner=alice)).secret
    answer = await ask(api, key)
    assert "sources" not in answer
    reply = await database_sync_to_async(Message.objects.get)(pk=answer["id"].split("-")[1])
    assert not reply.grounded and "27 months" not in json.dumps(reply.prompt_messages)


async def test_another_users_library_never_answers(api, alice, bob, upload):
    await database_sync_to_async(upload)(bob, "kettle.md", MANUAL)
    key = (await database_sync_to_async(keys.api_key_create)(owner=alice)).secret
    answer = await ask(api, key, documents=True)
    assert answer["sources"] == []
    reply = await database_sync_to_async(Message.objects.get)(pk=answer["id"].split("-")[1])
    assert "27 months" not in json.dumps(reply.prompt_messages)
