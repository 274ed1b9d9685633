"""“Write a better reply” over HTTP (PUT /api/messages/<id>/written-reply): who may
write what, what is stored, and what a refusal leaves behind (nothing)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from chat.models import Message
from chat.refusals import Refusal
from feedback import services
from feedback.models import FeedbackProfile, PreferencePair, Rating

pytestmark = pytest.mark.django_db


def written_url(message: Message | int | str) -> str:
    return f"/api/messages/{getattr(message, 'pk', message)}/written-reply"


def write(client: Client, message, body: object):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.put(written_url(message), data, content_type="application/json")


def stored() -> tuple[list[dict], list[dict]]:
    """Every reply and pair, to show that a refused request wrote nothing."""
    return (
        list(Message.objects.order_by("pk").values()),
        list(PreferencePair.objects.order_by("pk").values()),
    )


@pytest.fixture
def disliked(alice, replies) -> Message:
    """Alice rated her reply “Lyon.” thumbs down."""
    services.rating_submit(user=alice, message_id=replies[1].pk, value="down", reasons=["wrong"])
    return replies[1]


def test_the_url_matches_the_protocol():
    assert reverse("feedback:api-written-reply", args=[56]) == written_url(56)


def test_it_stores_the_written_reply_as_a_sibling_and_a_pending_pair(alice_client, alice, disliked):
    response = write(alice_client, disliked, {"content": "  Paris is the capital.  "})
    assert response.status_code == 201, response.content
    body = response.json()
    reply = Message.objects.get(pk=body["reply"]["id"])
    assert (reply.parent_id, reply.role, reply.status) == (
        disliked.parent_id,
        "assistant",
        "complete",
    )
    assert (reply.content, reply.written_by_user, reply.model_version) == (
        "Paris is the capital.",
        True,
        "",
    )
    assert reply.prompt_messages == disliked.prompt_messages  # what its writer answered
    assert body["reply"]["written_by"] == "user"
    assert body["reply"]["model_version"] == ""
    pair = PreferencePair.objects.get()
    assert (pair.user, pair.chosen, pair.rejected, pair.source, pair.status) == (
        alice,
        reply,
        disliked,
        "written",
        "pending",
    )
    assert body["pair"] == {"id": pair.pk, "rejected": disliked.pk, "status": "pending"}


def test_the_conversation_says_which_reply_each_written_one_rewrote(alice_client, disliked):
    reply_id = write(alice_client, disliked, {"content": "Paris."}).json()["reply"]["id"]
    answer = alice_client.get(f"/api/conversations/{disliked.conversation_id}/").json()
    assert answer["written"] == {str(disliked.pk): reply_id}
    shown = {message["id"]: message for message in answer["messages"]}
    assert shown[reply_id]["written_by"] == "user"
    assert shown[disliked.pk]["written_by"] == "model"
    assert shown[disliked.parent_id]["written_by"] == "user"  # the question


def test_writing_again_rewrites_the_same_reply_and_sends_its_pair_back_to_review(
    alice_client, disliked, django_user_model
):
    first = write(alice_client, disliked, {"content": "Paris."}).json()
    carol = django_user_model.objects.create_user("carol", is_staff=True)
    services.pairs_review(pairs=PreferencePair.objects.all(), reviewer=carol, status="approved")
    again = write(alice_client, disliked, {"content": "Paris, on the Seine."})
    assert again.status_code == 200
    assert again.json()["reply"]["id"] == first["reply"]["id"]
    assert Message.objects.filter(written_by_user=True).get().content == "Paris, on the Seine."
    pair = PreferencePair.objects.get()
    assert (pair.pk, pair.status, pair.reviewed_by) == (first["pair"]["id"], "pending", None)


def test_a_trusted_users_written_reply_is_approved_as_their_other_pairs_are(
    alice_client, alice, disliked
):
    FeedbackProfile.objects.create(user=alice, trusted=True)
    assert write(alice_client, disliked, {"content": "Paris."}).json()["pair"]["status"] == (
        "approved"
    )


def test_another_users_reply_answers_not_found_and_nothing_is_written(bob_client, disliked):
    before = stored()
    response = write(bob_client, disliked, {"content": "Paris."})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert stored() == before


@pytest.mark.parametrize(
    ("thumb", "message"),
    [("up", "rated thumbs down"), (None, "rated thumbs down")],
)
def test_only_a_thumbs_down_reply_can_be_rewritten(alice_client, alice, replies, thumb, message):
    if thumb:
        services.rating_submit(user=alice, message_id=replies[0].pk, value=thumb)
    before = stored()
    response = write(alice_client, replies[0], {"content": "Paris."})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("not_rewritable", "message")
    assert message in error["message"]
    assert stored() == before


@pytest.mark.parametrize(("status", "said"), [("streaming", "being written"), ("failed", "failed")])
def test_an_unfinished_reply_cannot_be_rewritten(alice_client, alice, disliked, status, said):
    Message.objects.filter(pk=disliked.pk).update(status=status)
    before = stored()
    error = write(alice_client, disliked, {"content": "Paris."}).json()["error"]
    assert error["code"] == "not_rewritable" and said in error["message"]
    assert stored() == before


def test_a_written_reply_is_not_rated_compared_or_rewritten(alice_client, alice, disliked):
    written = write(alice_client, disliked, {"content": "Paris."}).json()["reply"]["id"]
    with pytest.raises(Refusal) as refused:
        services.rating_submit(user=alice, message_id=written, value="up")
    assert refused.value.code == "not_rateable"
    with pytest.raises(Refusal) as refused:
        services.preference_submit(user=alice, chosen_id=written)
    assert refused.value.code == "not_rateable"
    assert write(alice_client, written, {"content": "x"}).json()["error"]["code"] == (
        "not_rewritable"
    )
    # Choosing between the model's replies leaves the written one out.
    pairs = services.preference_submit(user=alice, chosen_id=disliked.pk)
    assert written not in {pair.rejected_id for pair in pairs}


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"content": "   "}, 400, "empty_message", "content"),
        ({"content": ""}, 400, "empty_message", "content"),
        ({"content": 42}, 400, "invalid", "content"),
        ({}, 400, "invalid", "content"),
        ("[1, 2]", 400, "bad_json", None),
        ("{", 400, "bad_json", None),
    ],
)
def test_bad_bodies_are_refused_and_write_nothing(
    alice_client, disliked, body, status, code, field
):
    before = stored()
    response = write(alice_client, disliked, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert stored() == before


def test_a_reply_longer_than_a_message_may_be_is_refused(alice_client, disliked, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 20
    before = stored()
    error = write(alice_client, disliked, {"content": "x" * 21}).json()["error"]
    assert (error["code"], error["field"]) == ("message_too_long", "content")
    assert "21 characters" in error["message"] and "limit is 20" in error["message"]
    assert stored() == before
    assert write(alice_client, disliked, {"content": "x" * 20}).status_code == 201


@pytest.mark.parametrize("path_id", ["abc", "0", "99999999"])
def test_bad_or_missing_ids_are_refused(alice_client, disliked, path_id):
    response = write(alice_client, path_id, {"content": "Paris."})
    assert response.json()["error"]["code"] in {"invalid", "not_found"}
    assert response.status_code in {400, 404}
    assert not PreferencePair.objects.exists()


def test_it_needs_a_log_in(client, disliked):
    assert write(client, disliked, {"content": "Paris."}).status_code == 401


def test_an_opted_out_users_written_reply_is_stored_all_the_same(alice_client, alice, disliked):
    services.profile_update(user=alice, share_for_training=False)
    assert write(alice_client, disliked, {"content": "Paris."}).status_code == 201
    assert PreferencePair.objects.filter(source="written").exists()
    assert Rating.objects.filter(message=disliked).exists()
