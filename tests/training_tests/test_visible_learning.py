"""Feedback changes what users read: the real SmolLM2, trained by `train_now` with the
default settings on a few dozen synthetic pairs, then asked through the websocket."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from chat import services as chat_services
from chat.models import Message
from live.routing import websocket_application
from tests.llm_tests.training.synthetic import (
    HELDOUT_QUESTIONS,
    has_friendly_opening,
    polite_pairs,
)
from tests.support.chatting import chat_socket
from tests.support.factories import pairs_stored
from training.models import ModelVersion, TrainingRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SYSTEM_PROMPT = "You are a helpful, concise assistant."


@pytest.fixture
def smollm2_app(settings, smollm2_dir, tmp_path, build_engine):
    settings.CHAT_MODEL = str(smollm2_dir)
    settings.MODEL_VERSIONS_DIR = tmp_path / "versions"
    settings.CHAT_RATE_LIMIT_MESSAGES = 1000
    return websocket_application(build_engine(smollm2_dir))


async def served_replies(app, user) -> list[Message]:
    """Greedy replies to every held-out question, asked at once on sockets of their own."""
    return await asyncio.gather(*(_ask(app, user, question) for question in HELDOUT_QUESTIONS))


async def _ask(app, user, question: str) -> Message:
    conversation = await database_sync_to_async(_greedy_conversation)(user)
    socket = await chat_socket(app, user)
    await socket.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": question}
    )
    while (frame := await socket.receive_json_from(timeout=300))["type"] != "reply_done":
        pass
    await socket.disconnect()
    return await database_sync_to_async(Message.objects.get)(pk=frame["message"]["id"])


def _greedy_conversation(user):
    conversation = chat_services.conversation_create(owner=user)
    changes = {"temperature": 0.0, "max_new_tokens": 48}
    return chat_services.conversation_update(conversation=conversation, changes=changes)


def gate_checks(run: TrainingRun) -> list[tuple]:
    report = run.version.gate_report if run.version else {}
    return [(c["name"], c["passed"], c["value"], c["threshold"]) for c in report.get("checks", [])]


def trait_rate(replies: list[Message]) -> float:
    return sum(has_friendly_opening(reply.content) for reply in replies) / len(replies)


def roll_back_to_base(staff) -> ModelVersion:
    client = Client()
    client.force_login(staff)
    url = reverse("admin:training_modelversion_changelist")
    client.get(url)  # lists (and so creates) the base model's version
    base = ModelVersion.objects.get(adapter_path="")
    client.post(url, {"action": "roll_back", "_selected_action": [base.pk]})
    return base


@pytest.mark.timeout(1500)
async def test_train_now_changes_what_the_next_served_replies_say(
    smollm2_app, alice, django_user_model
):
    staff = await database_sync_to_async(django_user_model.objects.create_superuser)(
        "carol", password="carol-password-1"
    )
    before = await served_replies(smollm2_app, alice)
    assert trait_rate(before) < 0.1, [reply.content for reply in before]

    await database_sync_to_async(pairs_stored)(
        alice, staff, polite_pairs(0, 40), system_prompt=SYSTEM_PROMPT
    )
    await database_sync_to_async(call_command)("train_now")
    run = await database_sync_to_async(TrainingRun.objects.select_related("version").get)()
    assert run.status == "succeeded", (run.reason, run.metrics.get("stages"), gate_checks(run))
    version = run.version
    assert version.status == "active"

    after = await served_replies(smollm2_app, alice)
    assert {reply.model_version for reply in after} == {version.name}
    assert trait_rate(after) >= 0.6, [reply.content for reply in after]

    base = await database_sync_to_async(roll_back_to_base)(staff)
    again = await served_replies(smollm2_app, alice)
    assert {reply.model_version for reply in again} == {base.name}
    assert trait_rate(again) < 0.1, [reply.content for reply in again]
