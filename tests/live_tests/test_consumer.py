"""The chat websocket, through Channels' WebsocketCommunicator and the real ASGI stack."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.test import Client

from chat import services
from chat.models import Message
from live.routing import websocket_application

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def chat_settings(tiny_engine_settings):
    cache.clear()  # rate-limit counters
    tiny_engine_settings.CHAT_DEFAULT_MAX_NEW_TOKENS = 24
    return tiny_engine_settings


@pytest.fixture
def tiny_engine(build_engine, tiny_model_4k_dir):
    """The tiny model with a long window: a 3000-token reply is still running when stopped."""
    return build_engine(tiny_model_4k_dir)


@pytest.fixture
def conversation(alice):
    return services.conversation_create(owner=alice)


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connect(app, user=None, origin=b"http://localhost") -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user is not None:
        headers.append((b"cookie", await database_sync_to_async(session_cookie)(user)))
    communicator = WebsocketCommunicator(app, "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    frame = await communicator.receive_json_from(timeout=5)
    if user is not None:
        assert frame["type"] == "engine"
    return communicator, frame


async def receive_until(communicator, frame_type: str, timeout: float = 30) -> list[dict]:
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        if frame["type"] == "engine":
            continue
        frames.append(frame)
        if frame["type"] == frame_type:
            return frames


async def send_and_finish(communicator, conversation, content="Hello there", parent=None):
    await communicator.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": content, "parent": parent}
    )
    return await receive_until(communicator, "reply_done")


async def long_reply_started(app, user, conversation) -> tuple[WebsocketCommunicator, int]:
    """A socket whose reply (up to 3000 tokens) has sent its first token; and its id."""
    conversation.max_new_tokens = 3000
    await database_sync_to_async(conversation.save)()
    communicator, _ = await connect(app, user)
    await communicator.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": "Talk", "parent": None}
    )
    frames = await receive_until(communicator, "token")
    return communicator, frames[-1]["message"]


def message_count() -> int:
    return Message.objects.count()


async def test_it_streams_a_reply_and_stores_what_the_model_saw(app, alice, conversation):
    """The user message is saved first, tokens stream, then the stored reply arrives."""
    communicator, _ = await connect(app, alice)
    frames = await send_and_finish(communicator, conversation, "What is LoopChat?")
    types = [frame["type"] for frame in frames]
    assert types[:3] == ["message", "conversation", "reply_started"]
    tokens = [frame for frame in frames if frame["type"] == "token"]
    assert len(tokens) >= 2 and types.index("token") < types.index("reply_done")
    done = frames[-1]["message"]
    assert done["status"] == "complete"
    assert done["content"] == "".join(frame["text"] for frame in tokens)
    assert done["stats"]["completion_tokens"] == 24
    assert done["stats"]["time_to_first_token_ms"] > 0
    reply = await database_sync_to_async(Message.objects.get)(pk=done["id"])
    user_message = frames[0]["message"]
    assert reply.parent_id == user_message["id"]
    assert reply.prompt_messages[-1] == {"role": "user", "content": "What is LoopChat?"}
    assert reply.prompt_messages[0]["role"] == "system"
    assert reply.model_version == "tiny-random-llama-4k"
    assert frames[1]["conversation"]["title"] == "What is LoopChat?"
    await communicator.disconnect()


async def test_it_sends_the_history_of_the_branch(app, alice, conversation):
    """A follow-up is generated from the earlier turns of its own branch."""
    communicator, _ = await connect(app, alice)
    first = await send_and_finish(communicator, conversation, "First question")
    first_reply = first[-1]["message"]
    second = await send_and_finish(communicator, conversation, "Second", first_reply["id"])
    reply = await database_sync_to_async(Message.objects.get)(pk=second[-1]["message"]["id"])
    roles = [message["role"] for message in reply.prompt_messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert reply.prompt_messages[2]["content"] == first_reply["content"]
    await communicator.disconnect()


async def test_it_stops_a_reply_and_keeps_the_partial_text(app, alice, conversation, settings):
    """Stop ends generation at once; the partial reply is stored as stopped."""
    communicator, _ = await long_reply_started(app, alice, conversation)
    await communicator.send_json_to({"type": "stop"})
    frames = await receive_until(communicator, "reply_done")
    done = frames[-1]["message"]
    assert done["status"] == "stopped"
    assert done["content"]
    assert done["stats"]["completion_tokens"] < 3000
    reply = await database_sync_to_async(Message.objects.get)(pk=done["id"])
    assert (reply.status, reply.content) == ("stopped", done["content"])
    await communicator.disconnect()


async def test_it_keeps_a_partial_reply_when_the_browser_disconnects(app, alice, conversation):
    """A closed socket stops the reply; what was written stays, marked stopped."""
    communicator, reply_id = await long_reply_started(app, alice, conversation)
    await communicator.disconnect()
    reply = await database_sync_to_async(Message.objects.get)(pk=reply_id)
    assert reply.status == "stopped"
    assert reply.content


async def test_it_keeps_a_partial_reply_when_the_server_cancels_the_consumer(
    app, alice, conversation
):
    """A server shutting down may cancel consumers without a disconnect (Daphne does):
    the reply is still saved as stopped before the consumer ends."""
    communicator, reply_id = await long_reply_started(app, alice, conversation)
    communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await communicator.future
    reply = await database_sync_to_async(Message.objects.get)(pk=reply_id)
    assert reply.status == "stopped"
    assert reply.content


async def test_it_regenerates_a_sibling_reply(app, alice, conversation):
    """Regenerate writes a new reply under the same user message."""
    communicator, _ = await connect(app, alice)
    first = (await send_and_finish(communicator, conversation))[-1]["message"]
    await communicator.send_json_to({"type": "regenerate", "message": first["id"]})
    frames = await receive_until(communicator, "reply_done")
    second = frames[-1]["message"]
    assert second["id"] != first["id"]
    assert second["parent"] == first["parent"]
    assert second["status"] == "complete"
    await communicator.disconnect()


async def test_it_refuses_a_second_reply_while_one_runs(app, alice, conversation):
    """One reply at a time per socket: the second request gets a busy error."""
    conversation.max_new_tokens = 3000
    await database_sync_to_async(conversation.save)()
    communicator, _ = await connect(app, alice)
    await communicator.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": "One", "parent": None}
    )
    await receive_until(communicator, "token")
    await communicator.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": "Two", "parent": None}
    )
    frames = await receive_until(communicator, "error")
    assert frames[-1]["code"] == "busy"
    await communicator.send_json_to({"type": "stop"})
    await receive_until(communicator, "reply_done")
    assert await database_sync_to_async(Message.objects.filter(content="Two").exists)() is False
    await communicator.disconnect()


BAD_FRAMES = [
    ("not json", "bad_json"),
    ("[1, 2]", "bad_json"),
    (json.dumps({"type": "dance"}), "unknown_type"),
    (json.dumps({"content": "no type"}), "unknown_type"),
    (json.dumps({"type": "send", "conversation": "x", "content": "hi"}), "invalid"),
    (json.dumps({"type": "send", "conversation": 1, "content": 5}), "invalid"),
    (json.dumps({"type": "send", "conversation": 1, "content": "   "}), "empty_message"),
    (json.dumps({"type": "send", "conversation": 1, "content": "x" * 8001}), "message_too_long"),
    (json.dumps({"type": "send", "conversation": 1, "content": "x" * 70000}), "frame_too_large"),
    (json.dumps({"type": "regenerate", "message": True}), "invalid"),
    (json.dumps({"type": "stop"}), "not_running"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_FRAMES)
async def test_it_answers_bad_frames_with_typed_errors(app, alice, conversation, raw, code):
    """Every malformed frame gets an error frame; nothing is written; the socket lives."""
    communicator, _ = await connect(app, alice)
    await communicator.send_to(text_data=raw)
    error = await communicator.receive_json_from(timeout=5)
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    assert await database_sync_to_async(message_count)() == 0
    await communicator.send_json_to({"type": "ping", "nonce": "n1"})
    assert await communicator.receive_json_from(timeout=5) == {"type": "pong", "nonce": "n1"}
    await communicator.disconnect()


NONCED_REFUSALS = [
    ({"type": "dance", "nonce": "n1"}, "unknown_type"),
    ({"nonce": "n2"}, "unknown_type"),
    ({"type": "send", "conversation": "x", "content": "hi", "nonce": "n3"}, "invalid"),
    ({"type": "rate", "message": 999_999, "value": "up", "nonce": "n4"}, "not_found"),
    ({"type": "stop", "nonce": "n5"}, "not_running"),
]


@pytest.mark.parametrize(("frame", "code"), NONCED_REFUSALS)
async def test_every_refusal_echoes_the_nonce_whatever_stage_refused(app, alice, frame, code):
    """Type check, field check or service: the error frame carries the frame's nonce."""
    communicator, _ = await connect(app, alice)
    await communicator.send_json_to(frame)
    error = await communicator.receive_json_from(timeout=5)
    assert (error["type"], error["code"], error["nonce"]) == ("error", code, frame["nonce"])
    await communicator.disconnect()


async def test_a_bad_nonce_is_refused_and_not_echoed(app, alice):
    communicator, _ = await connect(app, alice)
    await communicator.send_json_to({"type": "ping", "nonce": "x" * 65})
    error = await communicator.receive_json_from(timeout=5)
    assert (error["code"], error["field"]) == ("invalid", "nonce")
    assert "nonce" not in error
    await communicator.disconnect()


async def test_it_refuses_binary_frames(app, alice):
    communicator, _ = await connect(app, alice)
    await communicator.send_to(bytes_data=b"\x00\x01")
    error = await communicator.receive_json_from(timeout=5)
    assert error["code"] == "bad_json"
    await communicator.disconnect()


async def test_it_hides_another_users_conversation(app, alice, bob, conversation):
    """Bob can neither write to nor regenerate in Alice's conversation."""
    alice_frames = None
    alice_socket, _ = await connect(app, alice)
    alice_frames = await send_and_finish(alice_socket, conversation)
    await alice_socket.disconnect()
    before = await database_sync_to_async(message_count)()
    communicator, _ = await connect(app, bob)
    await communicator.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": "mine now", "nonce": "a"}
    )
    error = await communicator.receive_json_from(timeout=5)
    assert (error["code"], error["nonce"]) == ("not_found", "a")
    await communicator.send_json_to(
        {"type": "regenerate", "message": alice_frames[-1]["message"]["id"]}
    )
    assert (await communicator.receive_json_from(timeout=5))["code"] == "not_found"
    assert await database_sync_to_async(message_count)() == before
    await communicator.disconnect()


async def test_it_refuses_a_parent_from_another_conversation(app, alice, conversation):
    communicator, _ = await connect(app, alice)
    other = await database_sync_to_async(services.conversation_create)(owner=alice)
    reply = (await send_and_finish(communicator, other))[-1]["message"]
    before = await database_sync_to_async(message_count)()
    await communicator.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": "hi", "parent": reply["id"]}
    )
    error = await communicator.receive_json_from(timeout=5)
    assert (error["code"], error["field"]) == ("not_found", "parent")
    assert await database_sync_to_async(message_count)() == before
    await communicator.disconnect()


async def test_it_rate_limits_generations(app, alice, conversation, settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 1
    communicator, _ = await connect(app, alice)
    await send_and_finish(communicator, conversation)
    before = await database_sync_to_async(message_count)()
    await communicator.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": "again"}
    )
    error = await communicator.receive_json_from(timeout=5)
    assert error["code"] == "rate_limited"
    assert error["retry_after"] > 0
    assert await database_sync_to_async(message_count)() == before
    await communicator.disconnect()


async def test_it_closes_unauthenticated_sockets_with_an_error(app):
    communicator, frame = await connect(app, None)
    assert frame == {"type": "error", "code": "unauthenticated", "message": "Log in first."}
    assert (await communicator.receive_output(timeout=5))["code"] == 4401


async def test_it_rejects_foreign_origins(app, alice):
    communicator = WebsocketCommunicator(
        app, "/ws/chat/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "accepted"),
    [
        (b"http://127.0.0.1:8765", b"127.0.0.1:8765", "ws", True),
        (b"http://127.0.0.1:8766", b"127.0.0.1:8765", "ws", False),  # another port
        (b"https://127.0.0.1:8765", b"127.0.0.1:8765", "ws", False),  # another scheme
        (b"https://localhost", b"localhost", "wss", True),
        (b"http://localhost", b"localhost", "wss", False),
        (b"http://localhost", None, "ws", False),  # no Host to compare with
    ],
)
async def test_the_origin_must_match_scheme_host_and_port(app, origin, host, scheme, accepted):
    headers = [(b"origin", origin)] + ([(b"host", host)] if host else [])
    communicator = WebsocketCommunicator(app, "/ws/chat/", headers=headers)
    communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect()
    assert connected is accepted
    await communicator.disconnect()


async def test_a_trusted_origin_is_accepted_from_elsewhere(tiny_engine, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com"]
    settings.ALLOWED_HOSTS = ["chat.example.com", "localhost"]
    app = websocket_application(tiny_engine)  # the allowed hosts are read as it is built
    headers = [(b"origin", b"https://chat.example.com"), (b"host", b"localhost:8000")]
    communicator = WebsocketCommunicator(app, "/ws/chat/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()


async def test_it_reports_a_model_that_failed_to_load(alice, conversation, build_engine, tmp_path):
    """A broken model gives engine state failed and engine_unavailable, writing nothing."""
    app = websocket_application(build_engine(tmp_path / "no-such-model"))
    communicator, _ = await connect(app, alice)
    state = await communicator.receive_json_from(timeout=30)
    assert state["type"] == "engine" and state["state"] == "failed"
    assert "no-such-model" not in state["detail"] and "/" not in state["detail"]
    assert "could not be loaded" in state["detail"]
    await communicator.send_json_to(
        {"type": "send", "conversation": conversation.pk, "content": "hi"}
    )
    error = await communicator.receive_json_from(timeout=5)
    assert error["code"] == "engine_unavailable"
    assert await database_sync_to_async(message_count)() == 0
    await communicator.disconnect()
