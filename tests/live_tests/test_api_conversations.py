"""The JSON HTTP API of docs/protocol.md: conversations, scoped to their owner."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from chat import services
from chat.models import Conversation, Message

pytestmark = pytest.mark.django_db

LIST_URL = "/api/conversations/"


def detail_url(conversation: Conversation) -> str:
    return f"/api/conversations/{conversation.pk}/"


def patch(client: Client, url: str, body: object, **extra: object):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.patch(url, data, content_type="application/json", **extra)


@pytest.fixture
def conversation(alice) -> Conversation:
    return services.conversation_create(owner=alice, title="Capitals")


@pytest.fixture
def with_messages(conversation) -> Conversation:
    """A question with two replies (a regeneration): three messages, two branches."""
    question = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content="Capital of France?"
    )
    for content in ("Paris.", "It is Paris."):
        Message.objects.create(
            conversation=conversation,
            parent=question,
            role=Message.Role.ASSISTANT,
            content=content,
            completion_tokens=3,
            duration_ms=300.0,
        )
    return conversation


def test_the_urls_match_the_protocol(conversation):
    assert reverse("chat:api-conversations") == LIST_URL
    assert reverse("chat:api-conversation", args=[conversation.pk]) == detail_url(conversation)


def test_it_lists_own_conversations_newest_first(alice_client, alice, bob):
    older = services.conversation_create(owner=alice, title="Older")
    newer = services.conversation_create(owner=alice, title="Newer")
    services.conversation_create(owner=bob, title="Bob's")

    response = alice_client.get(LIST_URL)

    assert response.status_code == 200
    assert [item["id"] for item in response.json()["conversations"]] == [newer.pk, older.pk]


def test_it_creates_a_conversation_with_the_default_settings(alice_client, alice, settings):
    response = alice_client.post(
        LIST_URL, {"title": "  Trip plans "}, content_type="application/json"
    )

    assert response.status_code == 201
    data = response.json()
    conversation = Conversation.objects.get(pk=data["id"])
    assert conversation.owner == alice
    assert data["title"] == "Trip plans"
    assert data["temperature"] == settings.CHAT_DEFAULT_TEMPERATURE
    assert data["system_prompt"] == settings.CHAT_DEFAULT_SYSTEM_PROMPT


def test_it_creates_an_untitled_conversation_from_an_empty_body(alice_client):
    response = alice_client.post(LIST_URL, "", content_type="application/json")
    assert response.status_code == 201
    assert response.json()["title"] == ""


def test_it_refuses_a_title_that_is_not_text(alice_client):
    response = alice_client.post(LIST_URL, {"title": 7}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"title": "The title must be text."}
    assert not Conversation.objects.exists()


def test_it_reads_a_conversation_with_every_branch(alice_client, with_messages):
    response = alice_client.get(detail_url(with_messages))

    assert response.status_code == 200
    data = response.json()
    assert data["conversation"]["title"] == "Capitals"
    messages = data["messages"]
    assert [message["content"] for message in messages] == [
        "Capital of France?",
        "Paris.",
        "It is Paris.",
    ]
    assert messages[1]["parent"] == messages[2]["parent"] == messages[0]["id"]
    assert messages[1]["stats"]["tokens_per_second"] == pytest.approx(10.0)
    # The caller's own feedback rides along (tests/feedback_tests/test_views.py fills it).
    assert (data["ratings"], data["preferences"]) == ({}, {})


def test_it_updates_title_and_settings(alice_client, conversation):
    changes = {
        "title": "Renamed",
        "system_prompt": "Be brief.",
        "temperature": 0.2,
        "top_p": 0.5,
        "max_new_tokens": 64,
    }

    response = patch(alice_client, detail_url(conversation), changes)

    assert response.status_code == 200
    assert {key: response.json()[key] for key in changes} == changes
    conversation.refresh_from_db()
    assert (conversation.title, conversation.temperature, conversation.max_new_tokens) == (
        "Renamed",
        0.2,
        64,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"temperature": 5}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"top_p": "high"}, "top_p"),
        ({"title": "x" * 201}, "title"),
        ({"owner": 2}, "owner"),
        ({"conversation": 2}, "conversation"),
    ],
)
def test_it_refuses_invalid_settings_and_writes_nothing(alice_client, conversation, body, field):
    """Each bad field is named with a message; the conversation is unchanged."""
    before = Conversation.objects.values().get(pk=conversation.pk)

    response = patch(alice_client, detail_url(conversation), {"title": "Changed", **body})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]
    assert error["fields"][field]
    assert Conversation.objects.values().get(pk=conversation.pk) == before


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"', "\xff"])
def test_it_refuses_a_body_that_is_not_a_json_object(alice_client, conversation, body):
    before = Conversation.objects.values().get(pk=conversation.pk)

    response = patch(alice_client, detail_url(conversation), body)

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "fields": {"__all__": "The request body must be a JSON object."},
        }
    }
    assert Conversation.objects.values().get(pk=conversation.pk) == before


def test_it_deletes_a_conversation_and_its_messages(alice_client, with_messages):
    response = alice_client.delete(detail_url(with_messages))

    assert response.status_code == 204
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()


def test_bob_cannot_see_change_or_delete_alices_conversation(bob_client, with_messages):
    """Every method answers 404, like a missing conversation, and nothing changes."""
    url = detail_url(with_messages)
    before = Conversation.objects.values().get(pk=with_messages.pk)

    responses = [
        bob_client.get(url),
        patch(bob_client, url, {"title": "Mine now"}),
        bob_client.delete(url),
    ]

    for response in responses:
        assert response.status_code == 404
        assert response.json() == {
            "error": {"code": "not_found", "message": "No such conversation."}
        }
    assert Conversation.objects.values().get(pk=with_messages.pk) == before
    assert Message.objects.filter(conversation=with_messages).count() == 3
    assert bob_client.get(LIST_URL).json() == {"conversations": []}


def test_a_missing_conversation_is_404(alice_client):
    assert alice_client.get("/api/conversations/999999/").status_code == 404


def test_it_needs_a_login(client, conversation):
    for response in (
        client.get(LIST_URL),
        client.get(detail_url(conversation)),
        client.post(LIST_URL),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"


def test_it_refuses_other_methods(alice_client, conversation):
    assert alice_client.put(detail_url(conversation)).status_code == 405
    assert alice_client.delete(LIST_URL).status_code == 405


def test_it_enforces_csrf(alice, conversation):
    """Without the X-CSRFToken header a write is refused; with it, it goes through."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get(reverse("chat:index"))  # Sets the CSRF cookie, as the page does.
    token = client.cookies["csrftoken"].value

    refused = patch(client, detail_url(conversation), {"title": "Forged"})
    refused_create = client.post(LIST_URL, {}, content_type="application/json")
    accepted = patch(client, detail_url(conversation), {"title": "Real"}, HTTP_X_CSRFTOKEN=token)

    assert refused.status_code == refused_create.status_code == 403
    assert accepted.status_code == 200
    conversation.refresh_from_db()
    assert conversation.title == "Real"
    assert Conversation.objects.count() == 1
