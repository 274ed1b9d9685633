"""A failed reply tells its user what happened in words, on the websocket and in the
HTTP API, naming no server; the address and the exception are kept for staff (the
admin). In-process, with the real client against a port nothing listens on."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from chat import services
from chat.models import Message
from live.replies import USER_ERRORS
from live.routing import websocket_application
from llm.engine.base import Failure
from llm.engine.openai_compat import OpenAIEngine
from tests.support.chatting import chat_socket
from tests.support.servers import free_port

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def unreachable_app(nowhere):
    engine = OpenAIEngine([nowhere], model="smollm2")
    yield websocket_application(engine)
    engine.close()


async def test_it_says_what_happened_and_keeps_the_address_for_staff(
    unreachable_app, nowhere, alice, alice_client, admin_client
):
    conversation = await database_sync_to_async(services.conversation_create)(owner=alice)
    socket = await chat_socket(unreachable_app, alice)
    await socket.send_json_to({"type": "send", "conversation": conversation.pk, "content": "Hi"})
    while (frame := await socket.receive_json_from(timeout=30))["type"] != "reply_done":
        assert "127.0.0.1" not in str(frame)
    await socket.disconnect()
    reply = frame["message"]
    assert reply["status"] == "failed"
    assert reply["error"] == USER_ERRORS[Failure.UNREACHABLE]

    api = await database_sync_to_async(alice_client.get)(f"/api/conversations/{conversation.pk}/")
    assert api.status_code == 200 and "127.0.0.1" not in api.content.decode()
    (failed,) = [m for m in api.json()["messages"] if m["id"] == reply["id"]]
    assert failed["error"] == reply["error"] and "error_detail" not in failed

    stored = await database_sync_to_async(Message.objects.get)(pk=reply["id"])
    assert stored.error_detail == f"no inference server is reachable: {nowhere}"
    page = await database_sync_to_async(admin_client.get)(
        f"/admin/chat/message/{reply['id']}/change/"
    )
    assert page.status_code == 200 and nowhere in page.content.decode()
