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
    anonymous = client.get(page)  # to LoopChat's log-in page, not the admin's
    assert (anonymous.status_code, anonymous["Location"]) == (302, "/login/?next=/review/")
    client.force_login(alice)
    response = client.get(page)  # logged in, not staff: told so
    assert response.status_code == 403 and b"For staff only" in response.content
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


# -- pairs ------------------------------------------------------------------------


@pytest.fixture
def pairs(alice, ratings) -> list[PreferencePair]:
    """After the ratings: Alice marks Lyon better (explicit) and writes a better reply
    under Lyon's thumbs-down (written). The derived pair from her thumbs came first."""
    from feedback.written import written_reply_submit

    paris, lyon = (rating.message for rating in ratings[:2])
    written = written_reply_submit(user=alice, message_id=lyon.pk, content="Paris, of course.")
    services.preference_submit(user=alice, chosen_id=lyon.pk)
    derived = PreferencePair.objects.get(source="derived")
    explicit = PreferencePair.objects.get(source="explicit")
    return [derived, written.pair, explicit]


def pair_url(pair_id: int) -> str:
    return reverse("review:api-pair", args=[pair_id])


def test_the_queue_walks_ratings_then_pairs_leaving_derived_pairs_to_their_ratings(
    staff_client, ratings, pairs
):
    derived, written, explicit = pairs
    first = next_item(staff_client)
    assert (first["item"]["kind"], first["pending"]) == ("rating", 5)  # 3 ratings, 2 pairs
    walked = [(first["item"]["kind"], first["item"]["id"])]
    for _ in range(4):
        kind, item_id = walked[-1]
        walked.append(
            (
                (answer := next_item(staff_client, after=f"{kind}:{item_id}"))["item"]["kind"],
                answer["item"]["id"],
            )
        )
        assert answer["position"] == len(walked)
    assert walked == [
        *(("rating", rating.pk) for rating in ratings),
        ("pair", written.pk),
        ("pair", explicit.pk),
    ]
    wrapped = next_item(staff_client, after=f"pair:{explicit.pk}")
    assert (wrapped["item"]["kind"], wrapped["item"]["id"]) == ("rating", ratings[0].pk)


def test_it_filters_pairs_by_kind_and_source(staff_client, ratings, pairs):
    derived, written, explicit = pairs
    only_pairs = next_item(staff_client, kind="pairs")
    assert (only_pairs["item"]["id"], only_pairs["pending"]) == (derived.pk, 3)
    only_ratings = next_item(staff_client, kind="ratings")
    assert (only_ratings["item"]["kind"], only_ratings["pending"]) == ("rating", 3)
    for source, pair in (("written", written), ("derived", derived), ("explicit", explicit)):
        answer = next_item(staff_client, source=source)
        assert (answer["item"]["id"], answer["pending"], answer["position"]) == (pair.pk, 1, 1)
    assert next_item(staff_client, source="arena") == {"item": None, "pending": 0, "position": None}
    for bad in ({"source": "gossip"}, {"kind": "both"}, {"kind": "pairs", "value": "up"}):
        response = staff_client.get(reverse("review:api-next"), bad)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid")
    assert staff_client.get(reverse("review:api-next"), {"after": "poll:3"}).status_code == 400


def test_a_written_pair_shows_both_replies_the_chosen_one_marked(staff_client, ratings, pairs):
    _, written, _ = pairs
    answer = staff_client.get(pair_url(written.pk)).json()
    item = answer["item"]
    assert (item["kind"], item["source"], item["source_label"]) == (
        "pair",
        "written",
        "Written by the user",
    )
    assert [turn["role"] for turn in item["context"]] == ["system", "user"]
    assert item["context"][1]["content"] == "Capital of **France**?"
    assert (item["chosen"]["content"], item["chosen"]["written_by"]) == (
        "Paris, of course.",
        "user",
    )
    assert item["chosen"]["rating"] is None
    assert (item["rejected"]["content"], item["rejected"]["written_by"]) == ("Lyon.", "model")
    assert item["rejected"]["rating"] == {
        "value": "down",
        "reasons": [{"key": "wrong", "label": "Wrong"}],
        "comment": "Not Lyon",
    }
    assert item["rater"]["name"] == "alice"
    assert (answer["pending"], answer["position"]) == (5, 4)


def test_a_decision_on_a_pair_is_recorded_and_undone(staff_client, carol, ratings, pairs):
    _, written, _ = pairs
    response = staff_client.post(
        pair_url(written.pk), json.dumps({"status": "approved"}), content_type="application/json"
    )
    answer = response.json()
    assert (answer["item"]["status"], answer["item"]["reviewed_by"], answer["position"]) == (
        "approved",
        "carol",
        None,
    )
    assert answer["pending"] == 4
    action = ReviewAction.objects.get()
    assert (action.pair, action.rating, action.previous_status, action.status) == (
        written,
        None,
        "pending",
        "approved",
    )
    decide(staff_client, ratings[0].pk, "excluded")  # then a rating
    assert staff_client.post(reverse("review:api-undo")).json()["item"]["kind"] == "rating"
    undone = staff_client.post(reverse("review:api-undo")).json()
    assert (undone["item"]["kind"], undone["item"]["id"], undone["item"]["status"]) == (
        "pair",
        written.pk,
        "pending",
    )
    written.refresh_from_db()
    assert (written.status, written.reviewed_by) == ("pending", None)
    assert ReviewAction.objects.filter(undone_at__isnull=False).count() == 2


def test_a_decided_derived_pair_keeps_its_decision_while_its_thumbs_hold(
    staff_client, alice, ratings, pairs
):
    derived = pairs[0]
    staff_client.post(
        pair_url(derived.pk), json.dumps({"status": "excluded"}), content_type="application/json"
    )
    decide(staff_client, ratings[0].pk, "approved")  # re-derives the message's pairs
    decide(staff_client, ratings[1].pk, "approved")
    kept = PreferencePair.objects.get(source="derived")
    assert (kept.pk, kept.status) == (derived.pk, "excluded")
    services.rating_submit(user=alice, message_id=ratings[0].message_id, value="down")
    assert not PreferencePair.objects.filter(source="derived").exists()  # thumbs no longer hold


def test_pair_decisions_are_refused_when_bad(staff_client, pairs, client, alice):
    assert (
        staff_client.post(
            pair_url(999999), json.dumps({"status": "approved"}), content_type="application/json"
        ).status_code
        == 404
    )
    assert staff_client.get(pair_url(999999)).status_code == 404
    bad = staff_client.post(
        pair_url(pairs[1].pk), json.dumps({"status": "maybe"}), content_type="application/json"
    )
    assert bad.json()["error"]["code"] == "invalid"
    client.force_login(alice)
    assert client.get(pair_url(pairs[1].pk)).status_code == 403
    assert not ReviewAction.objects.exists()


def test_the_page_offers_the_pair_filters_and_opens_on_a_pair(staff_client, pairs):
    response = staff_client.get(reverse("review:queue"), {"pair": pairs[1].pk})
    assert b'data-testid="filter-kind"' in response.content
    assert b'value="written"' in response.content
    config = response.context["client_config"]
    assert config["start"] == {"kind": "pair", "id": pairs[1].pk}


def test_a_reviewed_rating_can_still_be_cleared_by_its_rater(staff_client, alice, ratings):
    """Its review actions go with it (they used to block the delete on PostgreSQL)."""
    decide(staff_client, ratings[2].pk, "approved")  # the reply without siblings
    decide(staff_client, ratings[1].pk, "excluded")  # one with a sibling
    for rating in ratings[1:]:
        services.rating_submit(user=alice, message_id=rating.message_id, value=None)
    assert not Rating.objects.filter(pk__in=[r.pk for r in ratings[1:]]).exists()
    assert not ReviewAction.objects.exists()
