"""The focus review queue's API: order, progress, decisions, undo, staff only."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from chat import services as chat_services
from feedback import services
from feedback.models import FeedbackProfile, PreferencePair, Rating, ReviewAction
from tests.support.factories import exchange

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", password="carol-pw-1", is_staff=True)


@pytest.fixture
def staff_client(client, carol):
    client.force_login(carol)
    return client


@pytest.fixture
def ratings(alice) -> list[Rating]:
    """Alice rated three replies: two siblings (one up, one down) and one more."""
    conversation = chat_services.conversation_create(owner=alice)
    _, (paris, lyon) = exchange(conversation, "Capital of **France**?", ["Paris.", "Lyon."])
    _, (hello,) = exchange(conversation, "Say hi", ["Hello!"], parent=paris)
    services.rating_submit(user=alice, message_id=paris.pk, value="up", reasons=["accurate"])
    services.rating_submit(
        user=alice, message_id=lyon.pk, value="down", reasons=["wrong"], comment="Not Lyon"
    )
    services.rating_submit(user=alice, message_id=hello.pk, value="up")
    return list(Rating.objects.order_by("created_at", "id"))


def next_item(client, after=None, **filters) -> dict:
    params = {**filters, **({"after": after} if after else {})}
    response = client.get(reverse("review:api-next"), params)
    assert response.status_code == 200, response.content
    return response.json()


def decide(client, rating_id: int, status: str):
    return client.post(
        reverse("review:api-rating", args=[rating_id]),
        json.dumps({"status": status}),
        content_type="application/json",
    )


def test_it_walks_the_pending_ratings_oldest_first_with_progress(staff_client, ratings):
    first = next_item(staff_client)
    assert (first["item"]["id"], first["position"], first["pending"]) == (ratings[0].pk, 1, 3)
    second = next_item(staff_client, after=ratings[0].pk)
    assert (second["item"]["id"], second["position"]) == (ratings[1].pk, 2)
    wrapped = next_item(staff_client, after=ratings[2].pk)
    assert wrapped["item"]["id"] == ratings[0].pk  # past the end, back to the oldest


def test_it_shows_what_the_model_saw_the_sibling_and_labels(staff_client, ratings):
    item = staff_client.get(reverse("review:api-rating", args=[ratings[1].pk])).json()["item"]
    assert [turn["role"] for turn in item["context"]] == ["system", "user"]
    assert item["context"][1]["content"] == "Capital of **France**?"
    assert item["reply"]["content"] == "Lyon."
    assert item["reasons"] == [{"key": "wrong", "label": "Wrong"}]
    assert item["comment"] == "Not Lyon"
    assert item["sibling"]["content"] == "Paris."
    assert item["sibling"]["value"] == "up"
    assert item["sibling"]["preferred"] == "sibling"  # up vs down derived a pair
    assert item["rater"] == {
        "name": "alice",
        "trusted": False,
        "total": 3,
        "approved": 0,
        "excluded": 0,
    }


def test_it_filters_by_thumb(staff_client, ratings):
    answer = next_item(staff_client, value="down")
    assert (answer["item"]["id"], answer["pending"], answer["position"]) == (ratings[1].pk, 1, 1)
    assert staff_client.get(reverse("review:api-next"), {"value": "sideways"}).status_code == 400


def test_a_decision_records_reviewer_and_time_and_leaves_the_queue(staff_client, carol, ratings):
    answer = decide(staff_client, ratings[0].pk, "approved").json()
    assert answer["item"]["status"] == "approved"
    assert answer["item"]["reviewed_by"] == "carol"
    assert answer["pending"] == 2
    rating = Rating.objects.get(pk=ratings[0].pk)
    assert (rating.status, rating.reviewed_by, rating.reviewed_at is not None) == (
        "approved",
        carol,
        True,
    )
    action = ReviewAction.objects.get()
    assert (action.previous_status, action.status, action.reviewer) == (
        "pending",
        "approved",
        carol,
    )
    assert next_item(staff_client)["item"]["id"] == ratings[1].pk


def test_excluding_a_rating_excludes_its_derived_pair(staff_client, ratings):
    decide(staff_client, ratings[1].pk, "excluded")
    assert PreferencePair.objects.get().status == "excluded"


def test_undo_reverts_the_last_decision_even_after_a_reload(staff_client, ratings, client):
    decide(staff_client, ratings[0].pk, "approved")
    decide(staff_client, ratings[1].pk, "excluded")
    undone = staff_client.post(reverse("review:api-undo")).json()  # a new page: no client state
    assert (undone["item"]["id"], undone["item"]["status"]) == (ratings[1].pk, "pending")
    assert Rating.objects.get(pk=ratings[1].pk).reviewed_by is None
    again = staff_client.post(reverse("review:api-undo")).json()
    assert again["item"]["id"] == ratings[0].pk
    assert Rating.objects.filter(status="pending").count() == 3
    nothing = staff_client.post(reverse("review:api-undo"))
    assert nothing.status_code == 409
    assert nothing.json()["error"]["code"] == "nothing_to_undo"


def test_undo_is_per_reviewer(staff_client, ratings, django_user_model, client):
    decide(staff_client, ratings[0].pk, "approved")
    dave = django_user_model.objects.create_user("dave", password="dave-pw-1", is_staff=True)
    client.force_login(dave)
    assert client.post(reverse("review:api-undo")).status_code == 409
    assert Rating.objects.get(pk=ratings[0].pk).status == "approved"


def test_bad_decisions_are_refused_and_change_nothing(staff_client, ratings):
    assert decide(staff_client, ratings[0].pk, "maybe").status_code == 400
    assert decide(staff_client, 999999, "approved").status_code == 404
    bad = staff_client.post(
        reverse("review:api-rating", args=[ratings[0].pk]), "{", content_type="application/json"
    )
    assert bad.json()["error"]["code"] == "bad_json"
    assert not ReviewAction.objects.exists()
    assert Rating.objects.get(pk=ratings[0].pk).status == "pending"


def test_bulk_review_in_the_admin_records_actions(ratings, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="boss-pw-1")
    services.ratings_review(ratings=Rating.objects.all(), reviewer=boss, status="approved")
    assert ReviewAction.objects.filter(reviewer=boss, status="approved").count() == 3


def test_the_queue_is_staff_only(client, alice, ratings):
    page = reverse("review:queue")
    assert client.get(page).status_code == 302  # anonymous: to the log-in page
    client.force_login(alice)
    response = client.get(page)
    assert response.status_code == 302 and "login" in response["Location"]
    api = client.get(reverse("review:api-next"))
    assert (api.status_code, api.json()["error"]["code"]) == (403, "forbidden")
    assert decide(client, ratings[0].pk, "approved").status_code == 403
    assert Rating.objects.get(pk=ratings[0].pk).status == "pending"


def test_the_page_renders_for_staff(staff_client, ratings):
    response = staff_client.get(reverse("review:queue"))
    assert response.status_code == 200
    assert b'data-testid="review-progress"' in response.content


def test_a_trusted_rater_shows_as_trusted(staff_client, alice, ratings):
    FeedbackProfile.objects.create(user=alice, trusted=True)
    item = staff_client.get(reverse("review:api-rating", args=[ratings[0].pk])).json()["item"]
    assert item["rater"]["trusted"] is True
