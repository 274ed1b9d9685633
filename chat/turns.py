"""Conversations other apps hold through the API (/v1/chat/completions).

Such a client sends the whole message list every turn. Sent with LoopChat's
``conversation`` id, the list is matched against that stored conversation from
its first message on: the turns it already holds are reused, only the new ones
are stored, so one conversation grows as in the chat. Sent without an id (or
when nothing matches), a new conversation is stored. The same messages sent
twice put a second reply beside the first (a regenerate): two completions of
the same messages, which the user can then compare (/v1/feedback).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from chat import services
from chat.models import Conversation, Message
from chat.refusals import Refusal


@dataclass(frozen=True)
class Turn:
    """One message of the client's list after its system prompt: user or assistant."""

    role: str
    content: str


@transaction.atomic
def api_turns_save(
    *,
    owner: AbstractBaseUser,
    turns: list[Turn],
    changes: dict,
    conversation_id: object = None,
) -> tuple[Conversation, Message]:
    """Store the client's messages as a conversation with source ``api``; return it
    and the user message to answer (the last turn, a user's).

    ``changes`` (system prompt, sampling, ``use_library``) are checked and saved as
    ``conversation_update`` does; a ``Refusal`` leaves nothing written.
    """
    if conversation_id is None:
        conversation = services.conversation_create(owner=owner, source=Conversation.Source.API)
    else:
        conversation = _api_conversation(owner, conversation_id)
    services.conversation_update(conversation=conversation, changes=changes)
    parent, matching = None, conversation_id is not None
    for turn in turns:
        stored = _stored_turn(conversation, parent, turn) if matching else None
        matching = stored is not None
        parent = stored or _turn_create(conversation, parent, turn)
    return conversation, parent


def _api_conversation(owner: AbstractBaseUser, conversation_id: object) -> Conversation:
    try:
        number = int(conversation_id)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = 0
    conversation = (
        Conversation.objects.select_for_update()
        .filter(owner=owner, pk=number, source=Conversation.Source.API)
        .first()
    )
    if conversation is None:
        raise Refusal("not_found", "No such API conversation (or it is not yours).", "conversation")
    return conversation


def _stored_turn(conversation: Conversation, parent: Message | None, turn: Turn) -> Message | None:
    """The stored message this turn repeats: same place, role and text (the latest
    such reply, never a failed one or one the user wrote under a thumbs-down)."""
    return (
        Message.objects.filter(
            conversation=conversation,
            parent=parent,
            role=turn.role,
            content=turn.content,
            written_by_user=False,
        )
        .exclude(status__in=[Message.Status.FAILED, Message.Status.STREAMING])
        .order_by("-created_at", "-id")
        .first()
    )


def _turn_create(conversation: Conversation, parent: Message | None, turn: Turn) -> Message:
    if turn.role == Message.Role.USER:
        return services.user_message_create(
            conversation=conversation, content=turn.content, parent=parent
        )
    # A reply the client sends that LoopChat did not write here (an earlier turn
    # without the conversation id, another model, a few-shot example): part of
    # the history, with no model version.
    return Message.objects.create(
        conversation=conversation, parent=parent, role=Message.Role.ASSISTANT, content=turn.content
    )
