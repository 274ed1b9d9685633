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


def pairs_stored(user, reviewer, rows, *, system_prompt: str | None = None) -> None:
    """Each synthetic pair as two sibling replies the app served, ``user``'s choice
    between them, approved by ``reviewer``. ``system_prompt`` goes into what the
    model saw, as a served conversation's would."""
    from feedback import services as feedback_services
    from feedback.models import PreferencePair

    for row in rows:
        conversation = services.conversation_create(owner=user)
        asked = services.user_message_create(
            conversation=conversation, content=row["prompt"][-1]["content"], parent=None
        )
        seen = [{"role": "system", "content": system_prompt}] if system_prompt else []
        chosen, _ = (
            Message.objects.create(
                conversation=conversation,
                parent=asked,
                role=Message.Role.ASSISTANT,
                content=reply[0]["content"],
                status=Message.Status.COMPLETE,
                model_version="base",
                prompt_messages=[*seen, *row["prompt"]],
            )
            for reply in (row["chosen"], row["rejected"])
        )
        feedback_services.preference_submit(user=user, chosen_id=chosen.pk)
    feedback_services.pairs_review(
        pairs=PreferencePair.objects.all(), reviewer=reviewer, status="approved"
    )
