"""Rows for tests that need replies without running a model."""

from __future__ import annotations

from chat import services
from chat.models import Conversation, Message

SYSTEM = {"role": "system", "content": "You are a helpful, concise assistant."}


def exchange(
    conversation: Conversation, question: str, answers: list[str], parent: Message | None = None
) -> tuple[Message, list[Message]]:
    """A user message and sibling replies to it, stored as the engine would store them."""
    user_message = services.user_message_create(
        conversation=conversation, content=question, parent=parent
    )
    prompt = [SYSTEM, {"role": "user", "content": question}]
    replies = [
        Message.objects.create(
            conversation=conversation,
            parent=user_message,
            role=Message.Role.ASSISTANT,
            content=answer,
            status=Message.Status.COMPLETE,
            model_version="base-v0",
            prompt_messages=prompt,
            completion_tokens=len(answer.split()),
        )
        for answer in answers
    ]
    return user_message, replies
