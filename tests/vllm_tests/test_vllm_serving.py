"""Replies served by a real vLLM CPU server through LoopChat's websocket: streaming,
stop, sampling settings, trained versions hot-loaded (promote and roll back through the
admin), and a replica that dies mid-reply."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from channels.db import database_sync_to_async
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from chat import services as chat_services
from chat.models import Message
from live.engines import chat_engine
from live.replies import USER_ERRORS
from live.routing import websocket_application
from llm.engine.base import Failure
from tests.support.chatting import chat_socket
from tests.support.servers import _wait_for
from tests.support.tiny_model import build_tiny_adapter
from tests.support.vllm import kill_server, vllm_start
from training.models import ModelVersion

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]

QUESTION = "What is the capital of France?"


def conversation_of(user, **changes):
    conversation = chat_services.conversation_create(owner=user)
    changes = {"temperature": 0.0, "max_new_tokens": 24, **changes}
    return chat_services.conversation_update(conversation=conversation, changes=changes)


async def ask(app, user, conversation, content=QUESTION, *, stop_after: int | None = None):
    """Send one message; the token texts streamed and the ``reply_done`` frame."""
    socket = await chat_socket(app, user)
    await socket.send_json_to({"type": "send", "conversation": conversation.pk, "content": content})
    tokens = []
    while (frame := await socket.receive_json_from(timeout=120))["type"] != "reply_done":
        if frame["type"] == "token":
            tokens.append(frame["text"])
            if stop_after is not None and len(tokens) == stop_after:
                await socket.send_json_to({"type": "stop"})
    await socket.disconnect()
    return tokens, frame["message"]


async def test_it_streams_a_reply_token_by_token(vllm_app, alice):
    conversation = await database_sync_to_async(conversation_of)(alice)
    tokens, message = await ask(vllm_app, alice, conversation)
    assert len(tokens) > 3 and "Paris" in "".join(tokens)
    assert message["status"] == "complete" and message["content"] == "".join(tokens)
    assert message["model_version"] == "SmolLM2-135M-Instruct"
    stats = message["stats"]
    assert stats["completion_tokens"] >= len(tokens) - 1 and stats["prompt_tokens"] > 10
    assert stats["time_to_first_token_ms"] > 0
    stored = await database_sync_to_async(Message.objects.get)(pk=message["id"])
    assert (
        stored.content == message["content"] and stored.prompt_messages[-1]["content"] == QUESTION
    )


async def test_stop_keeps_the_partial_reply(vllm_app, alice):
    conversation = await database_sync_to_async(conversation_of)(alice, max_new_tokens=400)
    tokens, message = await ask(
        vllm_app, alice, conversation, "Write a long story about a dragon.", stop_after=3
    )
    assert message["status"] == "stopped"
    assert message["content"].startswith("".join(tokens[:3]))
    assert message["stats"]["completion_tokens"] < 400


async def test_sampling_settings_are_honoured(vllm_app, alice):
    """Greedy is deterministic; max_new_tokens caps the reply; high temperature varies it."""
    greedy = await database_sync_to_async(conversation_of)(alice)
    first = (await ask(vllm_app, alice, greedy))[1]
    second = (await ask(vllm_app, alice, greedy))[1]
    assert first["content"] == second["content"]
    # The first prompt was counted by /tokenize, the second (surely short) by the stream.
    assert first["stats"]["prompt_tokens"] == second["stats"]["prompt_tokens"] > 10

    short = await database_sync_to_async(conversation_of)(alice, max_new_tokens=3)
    capped = (await ask(vllm_app, alice, short, "Tell me about the sea."))[1]
    assert capped["finish_reason"] == "length" and capped["stats"]["completion_tokens"] == 3

    hot = await database_sync_to_async(conversation_of)(
        alice, temperature=1.5, top_p=1.0, max_new_tokens=24
    )
    texts = {(await ask(vllm_app, alice, hot, "Say something."))[1]["content"] for _ in range(3)}
    assert len(texts) > 1


@pytest.fixture
def staff_client(django_user_model):
    carol = django_user_model.objects.create_superuser("carol", password="carol-password-1")
    client = Client()
    client.force_login(carol)
    return client


def admin_action(client, action: str, version: ModelVersion) -> None:
    url = reverse("admin:training_modelversion_changelist")
    client.get(url)  # the changelist lists (and so creates) the base model's version
    response = client.post(url, {"action": action, "_selected_action": [version.pk]})
    assert response.status_code == 302


async def test_a_version_promoted_in_the_admin_is_served_by_vllm_then_rolled_back(
    vllm_app, vllm_settings, alice, staff_client, smollm2_dir, tmp_path
):
    cache.clear()
    adapter = await asyncio.to_thread(build_tiny_adapter, smollm2_dir, tmp_path / "v1-adapter")
    trained = await database_sync_to_async(ModelVersion.objects.create)(
        name="v1-dpo", base_model=str(smollm2_dir), adapter_path=str(adapter), method="dpo"
    )
    conversation = await database_sync_to_async(conversation_of)(alice)
    base_reply = (await ask(vllm_app, alice, conversation))[1]

    await database_sync_to_async(admin_action)(staff_client, "promote", trained)
    cache.clear()
    promoted = (await ask(vllm_app, alice, conversation))[1]
    assert promoted["status"] == "complete", promoted["error"]
    assert promoted["model_version"] == "v1-dpo"
    assert promoted["content"] != base_reply["content"]  # a random adapter changes the reply
    stored = await database_sync_to_async(Message.objects.get)(pk=promoted["id"])
    assert stored.model_version == "v1-dpo"

    # A replica that restarted has forgotten the adapter: the next reply registers it again.
    async with httpx.AsyncClient(base_url=vllm_settings.VLLM_URLS[0]) as http:
        forgot = await http.post("/v1/unload_lora_adapter", json={"lora_name": "v1-dpo"})
        assert forgot.status_code == 200
    again = (await ask(vllm_app, alice, conversation))[1]
    assert (again["model_version"], again["content"]) == ("v1-dpo", promoted["content"])

    base = await database_sync_to_async(ModelVersion.objects.get)(adapter_path="")
    await database_sync_to_async(admin_action)(staff_client, "roll_back", base)
    cache.clear()
    again = (await ask(vllm_app, alice, conversation))[1]
    assert again["model_version"] == base.name == "SmolLM2-135M-Instruct"
    assert again["content"] == base_reply["content"]


async def test_a_replica_killed_mid_reply_fails_it_fast_and_once_restarted_serves_again(
    vllm_settings, vllm_pair, smollm2_dir, alice, tmp_path
):
    """Two servers: the reply runs on the second, which is killed after a few tokens: the
    reply fails at once, in words naming no server, and the next one succeeds. The second
    is started again on its port: within 10 s of its /health answering, replies go to it
    again, and to the first (before, a restarted replica was never used again)."""
    (first_url, _), (second_url, second) = vllm_pair
    vllm_settings.VLLM_URLS = [second_url, first_url]  # idle: the first listed is picked
    engine = chat_engine()
    app = websocket_application(engine)
    conversation = await database_sync_to_async(conversation_of)(alice, max_new_tokens=400)
    socket = await chat_socket(app, alice)
    await socket.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": "Write a long story."}
    )
    tokens = []
    while len(tokens) < 3:
        frame = await socket.receive_json_from(timeout=120)
        if frame["type"] == "token":
            tokens.append(frame["text"])
    killed_at = time.monotonic()
    await asyncio.to_thread(kill_server, second)
    while (frame := await socket.receive_json_from(timeout=30))["type"] != "reply_done":
        pass
    waited = time.monotonic() - killed_at
    await socket.disconnect()
    failed = frame["message"]
    assert failed["status"] == "failed" and waited < 5, (failed, waited)
    assert failed["error"] == USER_ERRORS[Failure.SERVER_LOST]
    assert second_url not in failed["error"] and "http" not in failed["error"]
    stored = await database_sync_to_async(Message.objects.get)(pk=failed["id"])
    assert second_url in stored.error_detail
    assert failed["content"].startswith("".join(tokens))

    tokens, after = await ask(app, alice, conversation, QUESTION)
    assert after["status"] == "complete" and "Paris" in after["content"]

    port = int(second_url.rsplit(":", 1)[1])
    restarted = vllm_start(smollm2_dir, tmp_path / "restarted.log", port)
    vllm_pair[1] = (second_url, restarted)  # the session's fixture stops it
    await asyncio.to_thread(_wait_for, f"{second_url}/health", tmp_path / "restarted.log", 300)
    replicas = {replica.url: replica for replica in engine.replicas}
    sent = {url: replica.replies for url, replica in replicas.items()}
    healthy_at = time.monotonic()
    short = await database_sync_to_async(conversation_of)(alice, max_new_tokens=4)
    while replicas[second_url].replies == sent[second_url] and time.monotonic() - healthy_at < 10:
        assert (await ask(app, alice, short))[1]["status"] == "complete"
        await asyncio.sleep(0.2)
    back_after = time.monotonic() - healthy_at
    print(f"the restarted replica took a reply {back_after:.1f} s after its /health answered")
    for _ in range(2):  # equally idle: one each
        assert (await ask(app, alice, short))[1]["status"] == "complete"
    assert replicas[second_url].replies > sent[second_url] and back_after < 10
    assert replicas[first_url].replies >= sent[first_url] + 1
    engine.close()


def long_history(user, turns: int, words: int):
    """A conversation of ``turns`` long exchanges; the last assistant reply."""
    conversation = conversation_of(user)
    parent = None
    for turn in range(turns):
        asked = chat_services.user_message_create(
            conversation=conversation,
            content=f"Turn {turn}: " + "tell me more " * words,
            parent=parent,
        )
        parent = Message.objects.create(
            conversation=conversation,
            parent=asked,
            role=Message.Role.ASSISTANT,
            content="I see. " * words,
            status=Message.Status.COMPLETE,
        )
    return conversation, parent


async def test_the_oldest_turns_are_dropped_to_fit_the_context_window(vllm_app, alice):
    """Three exchanges of ~1,500 tokens each do not fit vLLM's 2,048: the newest is kept."""
    conversation, last = await database_sync_to_async(long_history)(alice, 3, 250)
    socket = await chat_socket(vllm_app, alice)
    await socket.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": QUESTION, "parent": last.pk}
    )
    while (frame := await socket.receive_json_from(timeout=120))["type"] != "reply_done":
        pass
    await socket.disconnect()
    reply = frame["message"]
    assert reply["status"] == "complete", reply["error"]
    stored = await database_sync_to_async(Message.objects.get)(pk=reply["id"])
    seen = [message["content"][:7] for message in stored.prompt_messages]
    assert seen[-1] == QUESTION[:7] and "Turn 0:" not in seen
    assert 0 < reply["stats"]["prompt_tokens"] <= 2048 - 24
