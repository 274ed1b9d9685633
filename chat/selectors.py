"""Reads for conversations and messages, always scoped to their owner."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Max, QuerySet

from chat.models import Conversation, Message


def conversation_list(*, owner: AbstractBaseUser) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner=owner)


def conversation_get(*, owner: AbstractBaseUser, conversation_id: object) -> Conversation:
    """The owner's conversation; ``Conversation.DoesNotExist`` for anyone else's."""
    return Conversation.objects.get(owner=owner, pk=_as_id(conversation_id, Conversation))


def message_get(*, owner: AbstractBaseUser, message_id: object) -> Message:
    """A message in one of the owner's conversations; ``Message.DoesNotExist`` otherwise."""
    return Message.objects.select_related("conversation", "parent").get(
        conversation__owner=owner, pk=_as_id(message_id, Message)
    )


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    """Every message of the conversation, all branches, oldest first."""
    return conversation.messages.all()


def streaming_reply_writers() -> dict[str, datetime]:
    """The web processes with replies streaming now: {identity: latest checkpoint}.

    Not scoped to an owner: it is for the sweep that finds replies whose process is gone.
    """
    rows = (
        Message.objects.filter(status=Message.Status.STREAMING)
        .exclude(streamed_by="")
        .values("streamed_by")
        .annotate(latest=Max("updated_at"))
    )
    return {row["streamed_by"]: row["latest"] for row in rows}


def message_path(*, message: Message) -> list[Message]:
    """The branch from the first message down to ``message``, inclusive."""
    by_id = {
        item.pk: item for item in Message.objects.filter(conversation_id=message.conversation_id)
    }
    path, current = [], by_id.get(message.pk, message)
    while current is not None:
        path.append(current)
        current = by_id.get(current.parent_id)
    return path[::-1]


def _as_id(value: object, model: type) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise model.DoesNotExist
    try:
        return int(value)
    except ValueError:
        raise model.DoesNotExist from None
