"""reply_stream on its own: how a reply ends when its browser goes away."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from chat import services
from chat.models import Message
from live.replies import ClientGone, reply_stream

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def long_replies(tiny_engine_settings, build_engine, tiny_model_4k_dir):
    return build_engine(tiny_model_4k_dir)


@database_sync_to_async
def conversation_with_message(owner):
    conversation = services.conversation_create(owner=owner)
    conversation.max_new_tokens = 3000
    conversation.save()
    message = services.user_message_create(conversation=conversation, content="Talk", parent=None)
    return conversation, message


@pytest.mark.parametrize("disconnect_too", [False, True], ids=["send_fails", "and_cancelled"])
async def test_a_send_to_a_closed_socket_stops_the_reply_and_keeps_its_text(
    long_replies, alice, disconnect_too
):
    """The socket closes under a token: the reply is saved as stopped with what was
    written, also when the consumer's disconnect cancels the task at that moment."""
    conversation, message = await conversation_with_message(alice)
    sent = []

    async def send(frame: dict) -> None:
        if frame["type"] == "token" and len(sent) == 3:
            if disconnect_too:
                task.cancel()
            raise ClientGone
        if frame["type"] == "token":
            sent.append(frame["text"])

    task = asyncio.create_task(
        reply_stream(
            engine=long_replies,
            conversation=conversation,
            user_message=message,
            send=send,
            nonce=None,
        )
    )
    await asyncio.gather(task, return_exceptions=True)

    reply = await database_sync_to_async(Message.objects.get)(role=Message.Role.ASSISTANT)
    assert reply.status == Message.Status.STOPPED
    assert reply.content.startswith("".join(sent))  # and the token that found it closed
    assert len(sent) == 3
    assert reply.completion_tokens < 3000
