"""The OpenAI-compatible API in process (live.api.openai): completions stored as API
conversations, resent histories, feedback on completions, and every refusal in
OpenAI's error shape with nothing written."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import AsyncClient

from chat import keys
from chat.models import ApiKey, Conversation, Message
from feedback.models import PreferencePair, Rating
from tests.support.api import api_client
from tests.support.factories import exchange

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/v1/chat/completions"
HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}]


@pytest.fixture
def alice_key(alice) -> str:
    return keys.api_key_create(owner=alice, name="widget").secret


@pytest.fixture
def api(tiny_engine) -> AsyncClient:
    """A client whose requests reach the views with the engine, as config/asgi.py hands it."""
    return api_client(tiny_engine)


async def post(api: AsyncClient, url: str, body: object, key: str | None, **headers):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return await api.post(url, data, content_type="application/json", headers={**auth, **headers})


def completion(**fields) -> dict:
    return {"model": "loopchat", "messages": HELLO, "max_tokens": 4, "temperature": 0, **fields}


def written_rows() -> tuple:
    """Every row a request could write, to show that a refused one wrote nothing."""
    return (
        list(Conversation.objects.order_by("pk").values()),
        list(Message.objects.order_by("pk").values()),
        list(Rating.objects.order_by("pk").values()),
        list(PreferencePair.objects.order_by("pk").values()),
    )


def assert_openai_error(response, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and error["message"]
    assert error["param"] == param


async def test_it_answers_whole_and_stores_an_api_conversation(api, alice, alice_key):
    response = await post(api, URL, completion(seed=7), alice_key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert response["X-LoopChat-Version"] == body["model"] == "tiny-random-llama"
    reply = await Message.objects.select_related("conversation").aget(
        pk=int(body["id"].removeprefix("chatcmpl-"))
    )
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": reply.content,
        "refusal": None,
    }
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": 4,
        "total_tokens": reply.prompt_tokens + 4,
    }
    assert body["conversation"] == reply.conversation_id
    assert reply.conversation.source == "api" and reply.conversation.owner_id == alice.pk
    assert reply.conversation.system_prompt == "Be brief."
    assert reply.prompt_messages == HELLO  # the exact prompt
    assert reply.model_version == "tiny-random-llama"
    assert reply.sampling == {
        "temperature": 0,
        "top_p": 0.95,
        "max_new_tokens": 4,
        "seed": 7,
        "no_repeat_ngram_size": 10,  # the loop rule it was written under (llm.sampling)
    }


async def test_it_streams_openai_chunks_ending_in_done(api, alice_key):
    body = completion(stream=True, stream_options={"include_usage": True})
    response = await post(api, URL, body, alice_key)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    lines = [line async for line in response.streaming_content]
    events = b"".join(lines).decode().strip().split("\n\n")
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    reply = await Message.objects.aget(pk=int(chunks[0]["id"].removeprefix("chatcmpl-")))
    assert reply.content == text and reply.status == "complete"


async def test_a_resent_history_with_the_conversation_id_grows_one_conversation(api, alice_key):
    first = (await post(api, URL, completion(), alice_key)).json()
    answer = first["choices"][0]["message"]["content"]
    history = [*HELLO, {"role": "assistant", "content": answer}]
    follow_up = [*history, {"role": "user", "content": "And then?"}]
    second = await post(
        api, URL, completion(messages=follow_up, conversation=first["conversation"]), alice_key
    )
    assert second.json()["conversation"] == first["conversation"], second.json()
    # The same messages again: a second completion beside the first (a regenerate).
    again = await post(api, URL, completion(conversation=first["conversation"]), alice_key)
    assert again.json()["conversation"] == first["conversation"]
    messages = [m async for m in Message.objects.filter(conversation_id=first["conversation"])]
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant", "assistant"]
    question, first_reply, next_question, follow_up_reply, regenerated = messages
    assert next_question.parent_id == first_reply.pk
    assert follow_up_reply.parent_id == next_question.pk
    assert regenerated.parent_id == first_reply.parent_id == question.pk
    # Without the id, the same history is a conversation of its own.
    other = await post(api, URL, completion(), alice_key)
    assert other.json()["conversation"] != first["conversation"]


async def test_a_stop_sequence_ends_the_reply_before_it(api, alice_key):
    sampled = completion(max_tokens=12, temperature=1.0, seed=3)
    whole = (await post(api, URL, sampled, alice_key)).json()
    text = whole["choices"][0]["message"]["content"]
    stop = next(character for character in text[1:] if character.strip())
    cut = (await post(api, URL, {**sampled, "stop": [stop]}, alice_key)).json()
    # The same seed writes the same text, up to (not including) the stop sequence.
    assert cut["choices"][0]["message"]["content"] == text[: text.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"
    reply = await Message.objects.aget(pk=int(cut["id"].removeprefix("chatcmpl-")))
    assert reply.content == text[: text.index(stop)]


async def test_models_lists_loopchat(api, alice_key):
    response = await api.get("/v1/models", headers={"Authorization": f"Bearer {alice_key}"})
    assert response.json()["data"][0]["id"] == "loopchat"


async def test_feedback_takes_a_thumb_a_preference_and_a_written_reply(api, alice, alice_key):
    first = (await post(api, URL, completion(), alice_key)).json()
    second = (
        await post(api, URL, completion(conversation=first["conversation"]), alice_key)
    ).json()
    thumb = {"completion": first["id"], "kind": "thumb", "value": "down", "reasons": ["wrong"]}
    response = await post(api, "/v1/feedback", {**thumb, "comment": "No."}, alice_key)
    assert response.status_code == 200, response.content
    assert response.json()["rating"] == {
        "value": "down",
        "reasons": ["wrong"],
        "comment": "No.",
        "status": "pending",
    }
    prefer = await post(
        api, "/v1/feedback", {"completion": second["id"], "kind": "preference"}, alice_key
    )
    assert prefer.json()["rejected"] == [first["id"]]
    written = {"completion": first["id"], "kind": "written_reply", "content": "Hi!"}
    reply = (await post(api, "/v1/feedback", written, alice_key)).json()
    assert reply["reply"]["content"] == "Hi!" and reply["pair"]["status"] == "pending"
    sources = [pair.source async for pair in PreferencePair.objects.order_by("source")]
    assert sources == ["explicit", "written"]


# -- refusals: OpenAI's error shape, nothing written ----------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("lc-not-a-key", "Incorrect API key provided."),
        (None, "No API key"),
    ],
)
async def test_a_wrong_or_missing_key_is_refused(api, alice_key, key, message):
    before = await _rows()
    response = await post(api, URL, completion(), key)
    assert_openai_error(response, 401, "invalid_api_key")
    assert response.json()["error"]["message"].startswith(message)
    assert await _rows() == before


async def test_a_revoked_or_disabled_key_is_refused(api, alice, alice_key):
    key = await ApiKey.objects.aget(owner=alice)
    await _sync(keys.api_key_revoke)(owner=alice, key_id=key.pk)
    before = await _rows()
    response = await post(api, URL, completion(), alice_key)
    assert_openai_error(response, 401, "invalid_api_key")
    assert "revoked" in response.json()["error"]["message"]
    other = await _sync(keys.api_key_create)(owner=alice)
    await ApiKey.objects.filter(pk=other.key.pk).aupdate(disabled=True)
    assert_openai_error(await post(api, URL, completion(), other.secret), 401, "invalid_api_key")
    assert await _rows() == before


async def test_another_users_completion_is_not_found(api, bob, alice_key):
    conversation = await _sync(Conversation.objects.create)(
        owner=bob, temperature=0.7, top_p=0.95, max_new_tokens=8
    )
    _, (bobs,) = await _sync(exchange)(conversation, "Hi?", ["Hello."])
    before = await _rows()
    for kind in ("thumb", "preference", "written_reply"):
        body = {"completion": f"chatcmpl-{bobs.pk}", "kind": kind, "value": "up", "content": "x"}
        response = await post(api, "/v1/feedback", body, alice_key)
        assert_openai_error(response, 404, "not_found", "completion")
    # Nor can its conversation be continued.
    response = await post(api, URL, completion(conversation=conversation.pk), alice_key)
    assert_openai_error(response, 404, "not_found", "conversation")
    assert await _rows() == before


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ("{not json", 400, "bad_json", None),
        ("[1, 2]", 400, "bad_json", None),
        (completion(model="gpt-4o"), 404, "model_not_found", "model"),
        (completion(n=2), 400, "invalid", "n"),
        (completion(temperature=3), 400, "invalid", "temperature"),
        (completion(max_tokens=0), 400, "invalid", "max_tokens"),
        (completion(messages=[]), 400, "invalid", "messages"),
        (completion(messages=[{"role": "tool", "content": "x"}]), 400, "invalid", "messages"),
        (
            completion(messages=[{"role": "user", "content": "  "}]),
            400,
            "empty_message",
            "messages",
        ),
        (
            completion(messages=[*HELLO, {"role": "assistant", "content": "Hi"}]),
            400,
            "invalid",
            "messages",
        ),
        (
            completion(messages=[{"role": "system", "content": "x" * 5000}, HELLO[1]]),
            400,
            "invalid",
            "system_prompt",
        ),
        (completion(stop=[1]), 400, "invalid", "stop"),
    ],
)
async def test_a_bad_request_is_refused(api, alice_key, body, status, code, param):
    before = await _rows()
    assert_openai_error(await post(api, URL, body, alice_key), status, code, param)
    assert await _rows() == before


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [("get", URL, "POST"), ("post", "/v1/models", "GET"), ("put", "/v1/feedback", "POST")],
)
async def test_a_wrong_http_method_is_refused_in_openais_shape(
    api, alice_key, method, url, allowed
):
    before = await _rows()
    response = await getattr(api, method)(url, headers={"Authorization": f"Bearer {alice_key}"})
    assert_openai_error(response, 405, "method_not_allowed")
    assert response["Allow"] == allowed
    assert await _rows() == before


async def test_a_message_over_the_chats_limit_is_refused(api, alice_key, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    before = await _rows()
    body = completion(messages=[{"role": "user", "content": "x" * 11}])
    assert_openai_error(await post(api, URL, body, alice_key), 400, "message_too_long", "messages")
    assert await _rows() == before


async def test_an_oversized_body_is_refused(api, alice_key, settings):
    settings.API_MAX_BODY_BYTES = 1000
    before = await _rows()
    body = completion(messages=[{"role": "user", "content": "x" * 2000}])
    assert_openai_error(await post(api, URL, body, alice_key), 413, "too_large")
    assert await _rows() == before


async def test_the_rate_limit_applies_as_in_the_chat(api, alice_key, settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 1
    settings.CHAT_RATE_LIMIT_WINDOW_SECONDS = 3600
    from django.core.cache import cache

    await _sync(cache.clear)()
    assert (await post(api, URL, completion(), alice_key)).status_code == 200
    before = await _rows()
    response = await post(api, URL, completion(), alice_key)
    assert_openai_error(response, 429, "rate_limit_exceeded")
    assert int(response["Retry-After"]) >= 1
    assert await _rows() == before


# -- keys ---------------------------------------------------------------------------------


def test_the_command_prints_a_working_key(alice, capsys):
    call_command("api_key_create", "alice", "--name", "scripts")
    secret = capsys.readouterr().out.strip()
    assert keys.api_key_owner(secret=secret) == alice
    key = ApiKey.objects.get(owner=alice)
    assert key.name == "scripts" and key.key_hash != secret and secret not in key.prefix * 2


def test_the_settings_page_creates_shows_once_lists_and_revokes(client, alice):
    client.force_login(alice)
    created = client.post("/settings/api-keys/", {"name": "Slack bot"}, follow=True)
    assert created.redirect_chain == [("/settings/", 302)]  # a reload resends nothing
    secret = created.context["new_key"]
    assert secret.startswith("lc-") and secret in created.content.decode()
    listed = client.get("/settings/").content.decode()
    assert "Slack bot" in listed and secret not in listed
    assert ApiKey.objects.filter(owner=alice).count() == 1
    key = ApiKey.objects.get(owner=alice)
    client.post(f"/settings/api-keys/{key.pk}/revoke")
    key.refresh_from_db()
    assert key.revoked_at is not None and not key.usable


def test_bob_cannot_revoke_alices_key(client, alice, bob, alice_key):
    client.force_login(bob)
    key = ApiKey.objects.get(owner=alice)
    assert client.post(f"/settings/api-keys/{key.pk}/revoke").status_code == 404
    key.refresh_from_db()
    assert key.usable


def _sync(function):
    from asgiref.sync import sync_to_async

    return sync_to_async(function)


async def _rows() -> tuple:
    return await _sync(written_rows)()
