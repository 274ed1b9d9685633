"""Rows for tests that need replies without running a model."""

from __future__ import annotations

from chat import services
from chat.models import Conversation, Message
from llm.retrieval.grounding import grounded_prompt
from llm.retrieval.passages import Passage

SYSTEM = {"role": "system", "content": "You are a helpful, concise assistant."}


def source(
    number: int,
    text: str,
    *,
    filename: str = "guide.pdf",
    page: int | None = 1,
    cited: bool = False,
) -> dict:
    """One retrieved passage as a grounded reply stores it (``Message.sources``)."""
    passage = Passage(
        chunk_id=100 + number,
        document_id=7,
        filename=filename,
        text=text,
        page=page,
        score=0.5,
        number=number,
    )
    return {**passage.as_dict(), "cited": cited}


def exchange(
    conversation: Conversation,
    question: str,
    answers: list[str],
    parent: Message | None = None,
    *,
    sources: list[dict] | None = None,
) -> tuple[Message, list[Message]]:
    """A user message and sibling replies to it, stored as the engine would store them.

    With ``sources`` (see ``source``) the replies are grounded: the passages are
    in their prompt, laid out as the chain lays them out, and in ``sources``.
    """
    user_message = services.user_message_create(
        conversation=conversation, content=question, parent=parent
    )
    prompt = _prompt(question, sources or [])
    replies = [
        Message.objects.create(
            conversation=conversation,
            parent=user_message,
            role=Message.Role.ASSISTANT,
            content=answer,
            status=Message.Status.COMPLETE,
            model_version="base-v0",
            prompt_messages=prompt,
            sources=sources or [],
            completion_tokens=len(answer.split()),
        )
        for answer in answers
    ]
    return user_message, replies


def _prompt(question: str, sources: list[dict]) -> list[dict]:
    passages = [
        Passage(
            chunk_id=item["chunk"],
            document_id=item["document"],
            filename=item["filename"],
            text=item["text"],
            page=item["page"],
            heading=item["heading"],
            score=item["score"],
            number=item["number"],
        )
        for item in sources
    ]
    grounded = grounded_prompt(
        system_prompt=SYSTEM["content"], question=question, passages=passages
    )
    return [
        {"role": "system", "content": grounded.system_prompt},
        {"role": "user", "content": grounded.input},
    ]


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
