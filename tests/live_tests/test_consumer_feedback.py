"""Rating over the chat websocket: the same rules as HTTP, answered with typed frames."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from chat import services as chat_services
from chat.models import Message
from feedback.models import PreferencePair, Rating
from tests.support.chatting import chat_socket
from tests.support.factories import exchange

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def replies(alice):
    conversation = chat_services.conversation_create(owner=alice)
    return exchange(conversation, "Capital of France?", ["Paris.", "Lyon."])[1]


async def ask(communicator, frame: dict) -> dict:
    await communicator.send_json_to(frame)
    while True:
        answer = await communicator.receive_json_from(timeout=10)
        if answer["type"] != "engine":
            return answer


def ratings() -> list[tuple[int, int, list, str]]:
    return list(Rating.objects.values_list("message_id", "value", "reasons", "comment"))


async def test_it_rates_changes_and_clears_over_the_socket(
    app, alice, replies, tiny_engine_settings
):
    socket = await chat_socket(app, alice)
    paris = replies[0].pk
    answer = await ask(socket, {"type": "rate", "message": paris, "value": "up", "nonce": "r1"})
    assert answer == {
        "type": "rating",
        "message": paris,
        "nonce": "r1",
        "rating": {"value": "up", "reasons": [], "comment": "", "status": "pending"},
    }
    answer = await ask(
        socket,
        {
            "type": "rate",
            "message": paris,
            "value": "down",
            "reasons": ["wrong"],
            "comment": "Lyon?",
        },
    )
    assert answer["rating"]["value"] == "down"
    assert await database_sync_to_async(ratings)() == [(paris, -1, ["wrong"], "Lyon?")]
    answer = await ask(socket, {"type": "rate", "message": paris, "value": None})
    assert answer["rating"] is None
    assert await database_sync_to_async(ratings)() == []
    await socket.disconnect()


async def test_it_records_a_preferred_sibling(app, alice, replies, tiny_engine_settings):
    socket = await chat_socket(app, alice)
    answer = await ask(socket, {"type": "prefer", "message": replies[1].pk})
    assert answer == {"type": "preference", "message": replies[1].pk, "rejected": [replies[0].pk]}
    pair = await database_sync_to_async(PreferencePair.objects.get)()
    assert (pair.chosen_id, pair.rejected_id, pair.source) == (
        replies[1].pk,
        replies[0].pk,
        "explicit",
    )
    await socket.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "rate", "value": "up"}, "invalid"),
        ({"type": "rate", "message": "x", "value": "up"}, "invalid"),
        ({"type": "rate", "message": True, "value": "up"}, "invalid"),
        ({"type": "rate", "message": 999999, "value": "up"}, "not_found"),
        ({"type": "prefer", "message": 999999}, "not_found"),
    ],
)
async def test_it_refuses_bad_rating_frames(app, alice, replies, tiny_engine_settings, frame, code):
    socket = await chat_socket(app, alice)
    answer = await ask(socket, frame)
    assert (answer["type"], answer["code"]) == ("error", code)
    assert await database_sync_to_async(ratings)() == []
    await socket.disconnect()


async def test_it_refuses_to_rate_another_users_reply(app, bob, replies, tiny_engine_settings):
    socket = await chat_socket(app, bob)
    answer = await ask(socket, {"type": "rate", "message": replies[0].pk, "value": "down"})
    assert (answer["code"], answer["field"]) == ("not_found", "message")
    answer = await ask(socket, {"type": "prefer", "message": replies[0].pk})
    assert answer["code"] == "not_found"
    assert await database_sync_to_async(ratings)() == []
    assert not await database_sync_to_async(PreferencePair.objects.exists)()
    await socket.disconnect()


# -- write a better reply ---------------------------------------------------------


def written() -> list[tuple[int | None, str, bool, str]]:
    return list(
        Message.objects.filter(written_by_user=True).values_list(
            "parent_id", "content", "written_by_user", "model_version"
        )
    )


async def test_it_writes_a_better_reply_over_the_socket(app, alice, replies, tiny_engine_settings):
    socket = await chat_socket(app, alice)
    lyon = replies[1]
    await ask(socket, {"type": "rate", "message": lyon.pk, "value": "down"})
    answer = await ask(
        socket, {"type": "write_reply", "message": lyon.pk, "content": "Paris.", "nonce": "w1"}
    )
    assert (answer["type"], answer["message"], answer["nonce"]) == ("written_reply", lyon.pk, "w1")
    reply = answer["reply"]
    assert (reply["parent"], reply["content"], reply["written_by"], reply["model_version"]) == (
        lyon.parent_id,
        "Paris.",
        "user",
        "",
    )
    pair = await database_sync_to_async(PreferencePair.objects.get)()
    assert answer["pair"] == {"id": pair.pk, "rejected": lyon.pk, "status": "pending"}
    assert (pair.chosen_id, pair.rejected_id, pair.source) == (reply["id"], lyon.pk, "written")

    again = await ask(socket, {"type": "write_reply", "message": lyon.pk, "content": "Paris!"})
    assert again["reply"]["id"] == reply["id"]  # rewritten, not a second one
    assert await database_sync_to_async(written)() == [(lyon.parent_id, "Paris!", True, "")]
    await socket.disconnect()


@pytest.mark.parametrize(
    ("frame", "code", "field"),
    [
        ({"type": "write_reply", "content": "Paris."}, "invalid", "message"),
        ({"type": "write_reply", "message": "1", "content": "Paris."}, "invalid", "message"),
        ({"type": "write_reply", "message": 999999, "content": "Paris."}, "not_found", "message"),
        ({"type": "write_reply", "message": "LYON"}, "invalid", "content"),
        ({"type": "write_reply", "message": "LYON", "content": ["Paris."]}, "invalid", "content"),
        ({"type": "write_reply", "message": "LYON", "content": " \n"}, "empty_message", "content"),
        (
            {"type": "write_reply", "message": "LYON", "content": "x" * 8001},
            "message_too_long",
            "content",
        ),
        (
            {"type": "write_reply", "message": "PARIS", "content": "Paris."},
            "not_rewritable",
            "message",
        ),
    ],
)
async def test_it_refuses_bad_write_reply_frames(
    app, alice, replies, tiny_engine_settings, frame, code, field
):
    """Paris is rated up and Lyon down; a refused frame writes nothing."""
    socket = await chat_socket(app, alice)
    await ask(socket, {"type": "rate", "message": replies[0].pk, "value": "up"})
    await ask(socket, {"type": "rate", "message": replies[1].pk, "value": "down"})
    ids = {"LYON": replies[1].pk, "PARIS": replies[0].pk}
    frame = {**frame, "message": ids.get(frame.get("message"), frame.get("message"))}
    if "message" not in frame or frame["message"] is None:
        frame.pop("message", None)
    answer = await ask(socket, {**frame, "nonce": "bad"})
    assert (answer["type"], answer["code"], answer.get("field"), answer["nonce"]) == (
        "error",
        code,
        field,
        "bad",
    )
    assert await database_sync_to_async(written)() == []
    await socket.disconnect()


async def test_it_refuses_to_rewrite_another_users_reply(
    app, alice, bob, replies, tiny_engine_settings
):
    from feedback import services

    await database_sync_to_async(services.rating_submit)(
        user=alice, message_id=replies[1].pk, value="down"
    )
    socket = await chat_socket(app, bob)
    answer = await ask(
        socket, {"type": "write_reply", "message": replies[1].pk, "content": "Paris."}
    )
    assert (answer["code"], answer["field"]) == ("not_found", "message")
    assert await database_sync_to_async(written)() == []
    assert not await database_sync_to_async(PreferencePair.objects.exists)()
    await socket.disconnect()
