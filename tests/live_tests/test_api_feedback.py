"""The feedback HTTP API of docs/protocol.md (live.api.feedback) and the account settings page."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from chat.models import Message
from feedback.models import FeedbackProfile, PreferencePair, Rating
from feedback.services import MAX_COMMENT_CHARS

pytestmark = pytest.mark.django_db

PROFILE_URL = "/api/profile/"


def rating_url(message: Message | int | str) -> str:
    return f"/api/messages/{getattr(message, 'pk', message)}/rating"


def preference_url(message: Message | int | str) -> str:
    return f"/api/messages/{getattr(message, 'pk', message)}/preference"


def put(client: Client, url: str, body: object, **extra: object):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.put(url, data, content_type="application/json", **extra)


def patch(client: Client, url: str, body: object, **extra: object):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.patch(url, data, content_type="application/json", **extra)


def feedback_rows() -> tuple[list[dict], list[dict], list[dict]]:
    """Every feedback row, to show that a refused request wrote nothing."""
    return (
        list(Rating.objects.order_by("pk").values()),
        list(PreferencePair.objects.order_by("pk").values()),
        list(FeedbackProfile.objects.order_by("pk").values()),
    )


@pytest.fixture
def rated(alice_client, replies) -> Message:
    """Alice's first reply, already rated up as helpful."""
    put(alice_client, rating_url(replies[0]), {"value": "up", "reasons": ["helpful"]})
    return replies[0]


def test_the_urls_match_the_protocol():
    assert reverse("feedback:api-rating", args=[56]) == rating_url(56)
    assert reverse("feedback:api-preference", args=[56]) == preference_url(56)
    assert reverse("feedback:api-profile") == PROFILE_URL
    assert reverse("feedback:settings") == "/settings/"


# -- ratings --------------------------------------------------------------------


def test_it_rates_changes_and_clears_a_reply(alice_client, alice, replies):
    """PUT creates the one rating, PUT again changes it, DELETE clears it."""
    url = rating_url(replies[0])

    created = put(alice_client, url, {"value": "up", "reasons": ["accurate", "helpful"]})
    assert created.status_code == 200
    assert created.json() == {
        "rating": {
            "value": "up",
            "reasons": ["helpful", "accurate"],
            "comment": "",
            "status": "pending",
        }
    }
    rating = Rating.objects.get()
    assert (rating.user, rating.message, rating.value) == (alice, replies[0], 1)

    changed = put(alice_client, url, {"value": "down", "reasons": ["wrong"], "comment": "Lyon?"})
    assert changed.status_code == 200
    assert changed.json()["rating"]["value"] == "down"
    rating = Rating.objects.get()
    assert (rating.value, rating.reasons, rating.comment) == (-1, ["wrong"], "Lyon?")

    cleared = alice_client.delete(url)
    assert cleared.status_code == 204
    assert not Rating.objects.exists()


def test_clearing_a_reply_that_has_no_rating_is_fine(alice_client, replies):
    assert alice_client.delete(rating_url(replies[0])).status_code == 204
    assert not Rating.objects.exists()


def test_bob_cannot_rate_or_prefer_alices_reply(bob_client, rated):
    """Every write answers 404 exactly like a missing reply, and nothing changes."""
    before = feedback_rows()

    responses = [
        put(bob_client, rating_url(rated), {"value": "down"}),
        bob_client.delete(rating_url(rated)),
        bob_client.post(preference_url(rated)),
    ]

    for response in responses:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert put(bob_client, rating_url(999_999), {"value": "up"}).json() == responses[0].json()
    assert feedback_rows() == before


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"value": "meh"}, "invalid", "value"),
        ({"value": 1}, "invalid", "value"),
        ({}, "invalid", "value"),
        ({"value": None}, "invalid", "value"),
        ({"value": "down", "reasons": ["boring"]}, "invalid", "reasons"),
        ({"value": "down", "reasons": ["helpful"]}, "invalid", "reasons"),
        ({"value": "up", "reasons": "helpful"}, "invalid", "reasons"),
        ({"value": "down", "comment": "x" * (MAX_COMMENT_CHARS + 1)}, "invalid", "comment"),
        ({"value": "down", "comment": 7}, "invalid", "comment"),
        ("{not json", "bad_json", None),
        ('["up"]', "bad_json", None),
        ("", "bad_json", None),
    ],
)
def test_it_refuses_an_invalid_rating_and_writes_nothing(alice_client, rated, body, code, field):
    """The error names the code and the field; the earlier rating is untouched."""
    before = feedback_rows()

    response = put(alice_client, rating_url(rated), body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]
    assert feedback_rows() == before


@pytest.mark.parametrize("message_id", ["abc", "1.5", "-1", "١"])
def test_it_refuses_a_message_id_that_is_not_an_integer(alice_client, rated, message_id):
    before = feedback_rows()

    responses = [
        put(alice_client, rating_url(message_id), {"value": "up"}),
        alice_client.delete(rating_url(message_id)),
        alice_client.post(preference_url(message_id)),
    ]

    for response in responses:
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid"
        assert response.json()["error"]["field"] == "message"
    assert feedback_rows() == before


def test_a_user_message_is_not_a_reply_to_rate(alice_client, replies):
    response = put(alice_client, rating_url(replies[0].parent_id), {"value": "up"})
    assert response.status_code == 404
    assert not Rating.objects.exists()


@pytest.mark.parametrize("status", [Message.Status.STREAMING, Message.Status.FAILED])
def test_it_refuses_to_rate_an_unfinished_reply(alice_client, replies, status):
    Message.objects.filter(pk=replies[0].pk).update(status=status)

    responses = [
        put(alice_client, rating_url(replies[0]), {"value": "up"}),
        alice_client.post(preference_url(replies[0])),
    ]

    for response in responses:
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "not_rateable"
    assert feedback_rows() == ([], [], [])


def test_a_stopped_reply_can_be_rated(alice_client, replies):
    Message.objects.filter(pk=replies[0].pk).update(status=Message.Status.STOPPED)
    response = put(alice_client, rating_url(replies[0]), {"value": "down", "reasons": ["wrong"]})
    assert response.status_code == 200
    assert Rating.objects.get().reasons == ["wrong"]


# -- preferences ----------------------------------------------------------------


def test_it_records_the_better_reply_and_a_new_choice_replaces_it(alice_client, replies):
    first, second, third = replies

    response = alice_client.post(preference_url(second))

    assert response.status_code == 201
    assert response.json() == {"chosen": second.pk, "rejected": [first.pk, third.pk]}
    pairs = PreferencePair.objects.filter(source=PreferencePair.Source.EXPLICIT)
    assert {(pair.chosen_id, pair.rejected_id) for pair in pairs} == {
        (second.pk, first.pk),
        (second.pk, third.pk),
    }

    alice_client.post(preference_url(third))
    pairs = PreferencePair.objects.filter(source=PreferencePair.Source.EXPLICIT)
    assert {pair.chosen_id for pair in pairs} == {third.pk}


def test_a_reply_without_finished_siblings_cannot_be_preferred(alice_client, replies):
    Message.objects.filter(pk__in=[replies[1].pk, replies[2].pk]).update(
        status=Message.Status.FAILED
    )

    response = alice_client.post(preference_url(replies[0]))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_siblings"
    assert not PreferencePair.objects.exists()


# -- the conversation read --------------------------------------------------------


def test_the_conversation_read_carries_the_callers_feedback(alice_client, conversation, replies):
    put(alice_client, rating_url(replies[0]), {"value": "down", "reasons": ["too_long"]})
    alice_client.post(preference_url(replies[1]))

    data = alice_client.get(f"/api/conversations/{conversation.pk}/").json()

    assert data["ratings"] == {
        str(replies[0].pk): {
            "value": "down",
            "reasons": ["too_long"],
            "comment": "",
            "status": "pending",
        }
    }
    assert data["preferences"] == {str(replies[0].parent_id): replies[1].pk}


# -- profile ----------------------------------------------------------------------


def test_sharing_is_on_until_turned_off(alice_client, alice):
    assert alice_client.get(PROFILE_URL).json() == {
        "share_for_training": True,
        "arena_opt_in": False,
    }

    response = patch(alice_client, PROFILE_URL, {"share_for_training": False})

    assert response.status_code == 200
    assert response.json() == {"share_for_training": False, "arena_opt_in": False}
    assert FeedbackProfile.objects.get(user=alice).share_for_training is False
    assert alice_client.get(PROFILE_URL).json()["share_for_training"] is False


def test_the_arena_opt_in_changes_alone(alice_client, alice):
    response = patch(alice_client, PROFILE_URL, {"arena_opt_in": True})
    assert response.json() == {"share_for_training": True, "arena_opt_in": True}
    profile = FeedbackProfile.objects.get(user=alice)
    assert (profile.share_for_training, profile.arena_opt_in) == (True, True)
    assert patch(alice_client, PROFILE_URL, {"arena_opt_in": "yes"}).status_code == 400


@pytest.mark.parametrize(
    ("body", "code"),
    [({"share_for_training": "no"}, "invalid"), ({}, "invalid"), ("nope", "bad_json")],
)
def test_it_refuses_an_invalid_profile_change(alice_client, body, code):
    response = patch(alice_client, PROFILE_URL, body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert not FeedbackProfile.objects.exists()


# -- protection --------------------------------------------------------------------


def test_it_needs_a_login(client, replies):
    """Every endpoint answers 401 JSON to a visitor; the settings page sends to log in."""
    responses = [
        put(client, rating_url(replies[0]), {"value": "up"}),
        client.delete(rating_url(replies[0])),
        client.post(preference_url(replies[0])),
        client.get(PROFILE_URL),
        patch(client, PROFILE_URL, {"share_for_training": False}),
    ]

    for response in responses:
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
    page = client.get("/settings/")
    assert (page.status_code, page.url) == (302, f"{reverse('login')}?next=/settings/")
    assert feedback_rows() == ([], [], [])


def test_it_enforces_csrf(alice, replies):
    """Without the X-CSRFToken header every write is refused; with it, it goes through."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.get(reverse("chat:index"))  # Sets the CSRF cookie, as the page does.
    token = client.cookies["csrftoken"].value

    refused = [
        put(client, rating_url(replies[0]), {"value": "up"}),
        client.delete(rating_url(replies[0])),
        client.post(preference_url(replies[0])),
        patch(client, PROFILE_URL, {"share_for_training": False}),
        client.post("/settings/", {}),
    ]
    assert [response.status_code for response in refused] == [403] * 5
    assert feedback_rows() == ([], [], [])

    accepted = put(client, rating_url(replies[0]), {"value": "up"}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200
    assert Rating.objects.count() == 1


def test_it_refuses_other_methods(alice_client, replies):
    assert alice_client.get(rating_url(replies[0])).status_code == 405
    assert alice_client.get(preference_url(replies[0])).status_code == 405
    assert alice_client.delete(PROFILE_URL).status_code == 405


# -- pages ------------------------------------------------------------------------


def test_the_settings_page_explains_the_toggle_and_saves_it(alice_client, alice):
    """On by default; a form post without the box turns it off and says so."""
    page = alice_client.get("/settings/")
    html = page.content.decode()
    assert 'data-testid="share-toggle"' in html
    assert page.context["profile"].share_for_training is True
    assert "Allow my conversations to be used to improve the model" in html
    assert "staff reviewers" in html
    assert "including feedback you gave before" in html

    response = alice_client.post("/settings/", {}, follow=True)

    assert response.redirect_chain == [("/settings/", 302)]
    assert FeedbackProfile.objects.get(user=alice).share_for_training is False
    assert 'data-testid="settings-saved"' in response.content.decode()
    assert response.context["profile"].share_for_training is False

    alice_client.post("/settings/", {"share_for_training": "on"})
    assert FeedbackProfile.objects.get(user=alice).share_for_training is True


def test_the_chat_page_links_settings_and_hands_over_the_reasons(alice_client):
    response = alice_client.get(reverse("chat:index"))

    assert 'href="/settings/"' in response.content.decode()
    feedback = response.context["client_config"]["feedback"]
    assert list(feedback["reasons"]["up"]) == ["helpful", "accurate", "well_written"]
    assert feedback["reasons"]["down"]["harmful"] == "Harmful or unsafe"
    assert feedback["maxCommentChars"] == MAX_COMMENT_CHARS
