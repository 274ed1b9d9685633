"""Chat through the real ASGI application, for tests of what serves a reply."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat import services as chat_services
from chat.models import Message
from tests.support.ws import session_cookie


async def chat_socket(app, user) -> WebsocketCommunicator:
    """A connected ``/ws/chat/`` socket of ``user`` on ``app`` (a websocket application)."""
    cookie = await database_sync_to_async(session_cookie)(user)
    socket = WebsocketCommunicator(
        app,
        "/ws/chat/",
        headers=[
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
            (b"cookie", cookie.encode()),
        ],
    )
    assert (await socket.connect())[0]
    return socket


async def reply_version(app, user, conversation) -> str:
    """The version that wrote a reply served through ``app``."""
    socket = await chat_socket(app, user)
    await socket.send_json_to({"type": "send", "conversation": conversation.pk, "content": "Hi"})
    while True:
        frame = await socket.receive_json_from(timeout=30)
        if frame["type"] == "reply_done":
            break
    await socket.disconnect()
    assert frame["message"]["status"] == "complete"
    stored = await database_sync_to_async(Message.objects.get)(pk=frame["message"]["id"])
    assert stored.model_version == frame["message"]["model_version"]
    return stored.model_version


@database_sync_to_async
def new_conversation(user):
    conversation = chat_services.conversation_create(owner=user)
    chat_services.conversation_update(conversation=conversation, changes={"max_new_tokens": 8})
    return conversation
