"""Reply bookkeeping: checkpoints while streaming, and replies orphaned by a dead process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat import services
from chat.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def streaming(alice):
    conversation = services.conversation_create(owner=alice)
    question = services.user_message_create(conversation=conversation, content="Hi", parent=None)
    return services.reply_create(conversation=conversation, parent=question)


def age(message: Message, seconds: int) -> None:
    past = timezone.now() - timedelta(seconds=seconds)
    Message.objects.filter(pk=message.pk).update(updated_at=past)


def test_a_checkpoint_saves_the_text_so_far_of_a_streaming_reply(streaming):
    services.reply_checkpoint(reply_id=streaming.pk, content="Hello, wor")
    streaming.refresh_from_db()
    assert (streaming.content, streaming.status) == ("Hello, wor", Message.Status.STREAMING)


def test_a_late_checkpoint_does_not_touch_a_finished_reply(streaming):
    services.reply_finish(reply=streaming, content="Hello, world.", status=Message.Status.COMPLETE)
    services.reply_checkpoint(reply_id=streaming.pk, content="Hello")
    streaming.refresh_from_db()
    assert (streaming.content, streaming.status) == ("Hello, world.", Message.Status.COMPLETE)


def test_it_fails_only_replies_not_checkpointed_for_a_while(alice, streaming):
    services.reply_checkpoint(reply_id=streaming.pk, content="Half a")
    age(streaming, 120)
    conversation = streaming.conversation
    alive = services.reply_create(conversation=conversation, parent=streaming.parent)
    done = services.reply_create(conversation=conversation, parent=streaming.parent)
    services.reply_finish(reply=done, content="Done.", status=Message.Status.COMPLETE)
    age(done, 120)

    assert services.stale_replies_fail(older_than_seconds=60) == 1
    statuses = {m.pk: (m.status, m.content) for m in Message.objects.filter(role="assistant")}
    assert statuses[streaming.pk] == (Message.Status.FAILED, "Half a")
    assert statuses[alive.pk] == (Message.Status.STREAMING, "")
    assert statuses[done.pk] == (Message.Status.COMPLETE, "Done.")


def test_a_long_first_message_titles_the_conversation_without_an_ellipsis(alice):
    """The stored title is cut at a word boundary; the UI adds its own "…"."""
    conversation = services.conversation_create(owner=alice)
    words = "Please explain how the Channels layer fans out messages to every socket, in detail"
    services.user_message_create(conversation=conversation, content=words, parent=None)
    conversation.refresh_from_db()

    assert "…" not in conversation.title
    assert len(conversation.title) <= services.TITLE_LENGTH
    assert words.startswith(conversation.title)
    assert words[len(conversation.title)] == " "  # cut between words
    assert conversation.title == "Please explain how the Channels layer fans out messages to"


def test_a_first_message_of_one_long_word_is_cut_at_the_title_length(alice):
    conversation = services.conversation_create(owner=alice)
    url = "https://example.com/" + "a" * 100
    services.user_message_create(conversation=conversation, content=url, parent=None)
    conversation.refresh_from_db()

    assert conversation.title == url[: services.TITLE_LENGTH]
