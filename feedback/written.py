"""“Write a better reply”: under a thumbs-down, the reply the user wanted.

It is stored twice over: as a reply (an assistant message, a sibling of the
rated one, marked written by the user and with no model version) and as a
``written`` preference pair, that reply chosen over the rated one, reviewed
like any pair. Exports carry it as a preference row (dpo, reward) and as a
supervised example (sft). One written reply per rated reply: writing again
rewrites it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat import services as chat_services
from chat.models import Message
from chat.refusals import Refusal
from feedback.models import FeedbackProfile, PreferencePair, Rating
from feedback.services import RATEABLE, initial_review_status, reply_id_parse


@dataclass(frozen=True)
class WrittenReply:
    """What ``written_reply_submit`` stored: the reply, its pair, and whether both are new."""

    reply: Message
    pair: PreferencePair
    created: bool


def written_reply_submit(
    *, user: AbstractBaseUser, message_id: object, content: object
) -> WrittenReply:
    """“Write a better reply”: under a reply the user rated thumbs down, the reply they
    wanted, stored as a sibling written by them and a `written` pair (it chosen, the
    rated reply rejected), pending review unless the user is trusted.

    Writing again over the same rated reply rewrites that reply and its pair in
    place (the pair back to review): one written reply per rated reply, never a pile.
    """
    text = _clean_written(content)
    reply_id_parse(message_id)
    with transaction.atomic():
        rated = _rewritable_reply(user, message_id)
        pair = (
            PreferencePair.objects.select_for_update()
            .select_related("chosen")
            .filter(user=user, rejected=rated, source=PreferencePair.Source.WRITTEN)
            .first()
        )
        reply = chat_services.written_reply_save(
            rated=rated, content=text, written=pair.chosen if pair else None
        )
        created = pair is None
        pair = pair or PreferencePair(
            user=user,
            conversation_id=rated.conversation_id,
            prompt_message_id=rated.parent_id,
            chosen=reply,
            rejected=rated,
            source=PreferencePair.Source.WRITTEN,
        )
        pair.status = initial_review_status(_trusted(user))
        pair.reviewed_by, pair.reviewed_at = None, None
        pair.save()
    return WrittenReply(reply=reply, pair=pair, created=created)


# -- helpers ----------------------------------------------------------------------


def _rewritable_reply(user: AbstractBaseUser, message_id: int) -> Message:
    """The user's own finished model reply that they rated thumbs down, locked."""
    reply = (
        Message.objects.select_for_update(of=("self",))
        .select_related("conversation")
        .filter(pk=message_id, conversation__owner=user, role=Message.Role.ASSISTANT)
        .first()
    )
    if reply is None:
        raise Refusal("not_found", "No such reply (or it is not yours).", "message")
    if reply.written_by_user:
        raise Refusal(
            "not_rewritable",
            "This is a reply you wrote; edit it from the reply it rewrote.",
            "message",
        )
    if reply.status not in RATEABLE:
        state = "is still being written" if reply.status == Message.Status.STREAMING else "failed"
        raise Refusal(
            "not_rewritable",
            f"Only a finished reply can be rewritten; this one {state}.",
            "message",
        )
    disliked = Rating.objects.filter(user=user, message=reply, value=Rating.Value.DOWN)
    if not disliked.exists():
        raise Refusal(
            "not_rewritable",
            "Only a reply you rated thumbs down can be rewritten: rate it down first.",
            "message",
        )
    return reply


def _clean_written(content: object) -> str:
    """The written reply's text: the limits of a message (CHAT_MAX_MESSAGE_CHARS)."""
    empty = "The reply is empty: write the reply you wanted."
    return chat_services.message_text_check(content, noun="reply", empty=empty).strip()


def _trusted(user: AbstractBaseUser) -> bool:
    return FeedbackProfile.objects.filter(user=user, trusted=True).exists()
