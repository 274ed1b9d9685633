"""Ratings and preference pairs: who may write what, and what is derived."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from chat import services as chat_services
from chat.models import Message
from chat.refusals import Refusal
from feedback import services
from feedback.models import FeedbackProfile, PreferencePair, Rating, ReviewStatus
from tests.support.factories import exchange

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(alice):
    return chat_services.conversation_create(owner=alice)


@pytest.fixture
def replies(conversation):
    return exchange(conversation, "Capital of France?", ["Paris.", "Lyon.", "Marseille."])[1]


def test_it_creates_then_changes_one_rating_per_user_and_reply(alice, replies):
    """A second rating updates the row, keeping when it was first created."""
    services.rating_submit(user=alice, message_id=replies[0].pk, value="up", reasons=["accurate"])
    first = Rating.objects.get()
    services.rating_submit(
        user=alice, message_id=replies[0].pk, value="down", reasons=["wrong"], comment=" meh "
    )
    rating = Rating.objects.get()
    assert (rating.value, rating.reasons, rating.comment) == (-1, ["wrong"], "meh")
    assert rating.created_at == first.created_at
    assert rating.updated_at > first.updated_at
    assert rating.model_version == "base-v0"
    assert rating.status == ReviewStatus.PENDING


def test_it_clears_a_rating(alice, replies):
    services.rating_submit(user=alice, message_id=replies[0].pk, value="up")
    assert services.rating_submit(user=alice, message_id=replies[0].pk, value=None) is None
    assert not Rating.objects.exists()


def test_it_resets_review_when_a_rating_changes(alice, bob, replies):
    services.rating_submit(user=alice, message_id=replies[0].pk, value="up")
    services.ratings_review(
        ratings=Rating.objects.all(), reviewer=bob, status=ReviewStatus.APPROVED
    )
    services.rating_submit(user=alice, message_id=replies[0].pk, value="down")
    rating = Rating.objects.get()
    assert (rating.status, rating.reviewed_by) == (ReviewStatus.PENDING, None)


def test_it_refuses_to_rate_someone_elses_reply(bob, replies):
    with pytest.raises(Refusal) as error:
        services.rating_submit(user=bob, message_id=replies[0].pk, value="up")
    assert error.value.code == "not_found"
    with pytest.raises(Refusal):
        services.preference_submit(user=bob, chosen_id=replies[0].pk)
    assert not Rating.objects.exists() and not PreferencePair.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"value": "meh"}, "value"),
        ({"value": 1}, "value"),
        ({"value": "up", "reasons": ["wrong"]}, "reasons"),  # a thumbs-down reason
        ({"value": "down", "reasons": "wrong"}, "reasons"),
        ({"value": "down", "reasons": ["nonsense"]}, "reasons"),
        ({"value": "down", "comment": "x" * 2001}, "comment"),
        ({"value": "down", "comment": 5}, "comment"),
        ({"value": "up", "message_id": "1"}, "message"),
    ],
)
def test_it_refuses_invalid_ratings_and_writes_nothing(alice, replies, changes, field):
    arguments = {"user": alice, "message_id": replies[0].pk, **changes}
    with pytest.raises(Refusal) as error:
        services.rating_submit(**arguments)
    assert (error.value.code, error.value.field) == ("invalid", field)
    assert not Rating.objects.exists()


def test_it_refuses_to_rate_user_messages_and_unfinished_replies(alice, conversation, replies):
    user_message = replies[0].parent
    with pytest.raises(Refusal) as error:
        services.rating_submit(user=alice, message_id=user_message.pk, value="up")
    assert error.value.code == "not_found"
    streaming = chat_services.reply_create(conversation=conversation, parent=user_message)
    with pytest.raises(Refusal) as error:
        services.rating_submit(user=alice, message_id=streaming.pk, value="up")
    assert error.value.code == "not_rateable"


def test_choosing_a_reply_still_being_written_is_refused_in_words_of_choosing(
    alice, conversation, replies
):
    """A "this one is better" on a streaming reply speaks of choosing, not rating."""
    streaming = chat_services.reply_create(conversation=conversation, parent=replies[0].parent)
    with pytest.raises(Refusal) as error:
        services.preference_submit(user=alice, chosen_id=streaming.pk)
    assert error.value.code == "not_rateable"
    assert error.value.message == "Wait until the reply is finished to choose it."


def test_it_derives_pairs_from_opposite_ratings_of_siblings(alice, replies):
    """Every thumbs-up sibling beats every thumbs-down sibling; changes re-derive."""
    paris, lyon, marseille = replies
    services.rating_submit(user=alice, message_id=paris.pk, value="up")
    assert not PreferencePair.objects.exists()
    services.rating_submit(user=alice, message_id=lyon.pk, value="down")
    services.rating_submit(user=alice, message_id=marseille.pk, value="down")
    pairs = {(p.chosen_id, p.rejected_id) for p in PreferencePair.objects.all()}
    assert pairs == {(paris.pk, lyon.pk), (paris.pk, marseille.pk)}
    assert {p.source for p in PreferencePair.objects.all()} == {"derived"}
    services.rating_submit(user=alice, message_id=lyon.pk, value="up")
    pairs = {(p.chosen_id, p.rejected_id) for p in PreferencePair.objects.all()}
    assert pairs == {(paris.pk, marseille.pk), (lyon.pk, marseille.pk)}
    services.rating_submit(user=alice, message_id=marseille.pk, value=None)
    assert not PreferencePair.objects.exists()


def test_it_does_not_pair_replies_to_different_messages(alice, conversation, replies):
    _, other = exchange(conversation, "Another question", ["Other answer"], parent=replies[0])
    services.rating_submit(user=alice, message_id=replies[0].pk, value="up")
    services.rating_submit(user=alice, message_id=other[0].pk, value="down")
    assert not PreferencePair.objects.exists()


def test_derived_pairs_follow_the_review_of_both_ratings(alice, bob, replies):
    services.rating_submit(user=alice, message_id=replies[0].pk, value="up")
    services.rating_submit(user=alice, message_id=replies[1].pk, value="down")
    services.ratings_review(
        ratings=Rating.objects.filter(message=replies[0]), reviewer=bob, status="approved"
    )
    assert PreferencePair.objects.get().status == "pending"
    services.ratings_review(ratings=Rating.objects.all(), reviewer=bob, status="approved")
    assert PreferencePair.objects.get().status == "approved"
    services.ratings_review(
        ratings=Rating.objects.filter(message=replies[1]), reviewer=bob, status="excluded"
    )
    assert PreferencePair.objects.get().status == "excluded"


def test_it_records_an_explicit_choice_and_replaces_it(alice, replies):
    paris, lyon, marseille = replies
    pairs = services.preference_submit(user=alice, chosen_id=lyon.pk)
    assert {(p.chosen_id, p.rejected_id) for p in pairs} == {
        (lyon.pk, paris.pk),
        (lyon.pk, marseille.pk),
    }
    services.preference_submit(user=alice, chosen_id=paris.pk)
    stored = {(p.chosen_id, p.rejected_id) for p in PreferencePair.objects.all()}
    assert stored == {(paris.pk, lyon.pk), (paris.pk, marseille.pk)}
    assert {p.source for p in PreferencePair.objects.all()} == {"explicit"}


def test_it_refuses_a_choice_without_siblings(alice, conversation):
    _, (only,) = exchange(conversation, "Hi", ["Hello"])
    with pytest.raises(Refusal) as error:
        services.preference_submit(user=alice, chosen_id=only.pk)
    assert error.value.code == "no_siblings"
    assert not PreferencePair.objects.exists()


def test_it_auto_approves_trusted_users(alice, replies, settings):
    settings.FEEDBACK_AUTO_APPROVE_TRUSTED = True
    FeedbackProfile.objects.create(user=alice, trusted=True)
    services.rating_submit(user=alice, message_id=replies[0].pk, value="up")
    assert Rating.objects.get().status == ReviewStatus.APPROVED
    settings.FEEDBACK_AUTO_APPROVE_TRUSTED = False
    services.rating_submit(user=alice, message_id=replies[1].pk, value="up")
    assert Rating.objects.get(message=replies[1]).status == ReviewStatus.PENDING


def test_it_stores_the_opt_out(alice):
    assert services.profile_update(user=alice, share_for_training=False).share_for_training is False
    with pytest.raises(Refusal):
        services.profile_update(user=alice, share_for_training="no")


def test_it_counts_siblings_only_among_replies(alice, conversation, replies):
    """A reply's siblings are the other replies to the same user message."""
    assert Message.objects.filter(parent=replies[0].parent).count() == 3


@pytest.mark.django_db(transaction=True)
def test_derived_pairs_stay_right_when_siblings_are_rated_at_once(alice, replies):
    """Two tabs rate sibling replies at the same moment, round after round: after
    each round the derived pairs match the ratings. (It bites on PostgreSQL, as in
    CI; SQLite runs one writing transaction at a time anyway.)"""
    paris, lyon, _ = replies
    wrong_rounds = []

    def check_round():
        ratings = {r.message_id: r.value for r in Rating.objects.all()}
        ups = [m for m, value in ratings.items() if value == Rating.Value.UP]
        downs = [m for m, value in ratings.items() if value == Rating.Value.DOWN]
        expected = {(up, down) for up in ups for down in downs}
        if {(p.chosen_id, p.rejected_id) for p in PreferencePair.objects.all()} != expected:
            wrong_rounds.append(ratings)
        connection.close()

    start, done = threading.Barrier(2), threading.Barrier(2, action=check_round)
    failures = []

    def rate(reply, values):
        try:
            for value in values:
                start.wait(timeout=10)
                services.rating_submit(user=alice, message_id=reply.pk, value=value)
                done.wait(timeout=10)
        except Exception as error:  # reported by the assertion below
            failures.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=rate, args=(paris, ["up", "down", None] * 20)),
        threading.Thread(target=rate, args=(lyon, ["down", "up"] * 30)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert wrong_rounds == []
