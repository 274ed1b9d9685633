"""Writes for conversations and messages. Views and the consumer call these."""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from chat.models import Conversation, Message
from chat.refusals import Refusal
from llm.retrieval.grounding import cited_numbers
from llm.retrieval.passages import Passage
from llm.sampling import InvalidSampling, SamplingParams

TITLE_LENGTH = 60
_FINISH_FIELDS = [
    "content",
    "status",
    "finish_reason",
    "error",
    "error_detail",
    "completion_tokens",
    "time_to_first_token_ms",
    "duration_ms",
]


def message_text_check(content: object, *, noun: str, empty: str) -> str:
    """Text a user sends (a message, a reply they wrote) within CHAT_MAX_MESSAGE_CHARS.

    ``noun`` names it in the length refusal; ``empty`` is the refusal of blank text.
    """
    if not isinstance(content, str):
        raise Refusal("invalid", "content must be a string.", "content")
    if not content.strip():
        raise Refusal("empty_message", empty, "content")
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(content) > limit:
        raise Refusal(
            "message_too_long",
            f"The {noun} is {len(content)} characters long; the limit is {limit}.",
            "content",
        )
    return content


def conversation_create(
    *, owner: AbstractBaseUser, title: str = "", source: str = Conversation.Source.CHAT
) -> Conversation:
    return Conversation.objects.create(
        owner=owner,
        source=source,
        title=title.strip()[:200],
        system_prompt=settings.CHAT_DEFAULT_SYSTEM_PROMPT,
        temperature=settings.CHAT_DEFAULT_TEMPERATURE,
        top_p=settings.CHAT_DEFAULT_TOP_P,
        max_new_tokens=settings.CHAT_DEFAULT_MAX_NEW_TOKENS,
    )


def conversation_update(*, conversation: Conversation, changes: dict) -> Conversation:
    """Rename or change settings. A ``Refusal`` names each bad field; nothing is saved."""
    allowed = {"title", "system_prompt", "temperature", "top_p", "max_new_tokens", "use_library"}
    unknown = set(changes) - allowed
    if unknown:
        _refuse({name: "This field cannot be changed." for name in unknown})
    errors: dict[str, str] = {}
    if "title" in changes:
        title = changes["title"]
        if not isinstance(title, str) or len(title.strip()) > 200:
            errors["title"] = "The title must be text of at most 200 characters."
    if "system_prompt" in changes:
        prompt = changes["system_prompt"]
        limit = settings.CHAT_MAX_SYSTEM_PROMPT_CHARS
        if not isinstance(prompt, str) or len(prompt) > limit:
            errors["system_prompt"] = (
                f"The system prompt must be text of at most {limit} characters."
            )
    if "use_library" in changes and not isinstance(changes["use_library"], bool):
        errors["use_library"] = "Searching your library is on (true) or off (false)."
    sampling = {
        key: changes[key] for key in ("temperature", "top_p", "max_new_tokens") if key in changes
    }
    try:
        SamplingParams(**{**sampling_of(conversation).as_dict(), **sampling})
    except InvalidSampling as error:
        errors[error.field] = str(error)
    if errors:
        _refuse(errors)
    for name, value in changes.items():
        setattr(conversation, name, value.strip() if name == "title" else value)
    conversation.save()
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def sampling_of(conversation: Conversation) -> SamplingParams:
    return SamplingParams(
        temperature=conversation.temperature,
        top_p=conversation.top_p,
        max_new_tokens=conversation.max_new_tokens,
    )


@transaction.atomic
def user_message_create(
    *, conversation: Conversation, content: str, parent: Message | None
) -> Message:
    """Save the user's turn (before any generation) and title a new conversation."""
    message = Message.objects.create(
        conversation=conversation, parent=parent, role=Message.Role.USER, content=content
    )
    if not conversation.title:
        conversation.title = _title_from(content)
    conversation.save(update_fields=["title", "updated_at"])
    return message


def reply_create(
    *, conversation: Conversation, parent: Message, streamed_by: str = "", seed: int | None = None
) -> Message:
    """An empty assistant reply, streaming, under the user message ``parent``;
    ``streamed_by`` names the web process that writes it, ``seed`` the one it samples with."""
    return Message.objects.create(
        conversation=conversation,
        parent=parent,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        sampling=replace(sampling_of(conversation), seed=seed).as_dict(),
        streamed_by=streamed_by,
    )


def reply_claim(*, reply: Message, streamed_by: str) -> None:
    """Record which web process streams ``reply`` (one created before it was streamed)."""
    reply.streamed_by = streamed_by
    reply.save(update_fields=["streamed_by", "updated_at"])


def reply_start(
    *,
    reply: Message,
    model_version: str,
    prompt_messages: list[dict],
    prompt_tokens: int,
    sources: list[dict] | None = None,
) -> None:
    """Record which version writes the reply and exactly what it was shown: the
    messages and, for a grounded reply, the passages retrieved into them."""
    reply.model_version = model_version
    reply.prompt_messages = prompt_messages
    reply.prompt_tokens = prompt_tokens
    reply.sources = sources or []
    fields = ["model_version", "prompt_messages", "prompt_tokens", "sources", "updated_at"]
    reply.save(update_fields=fields)


def reply_checkpoint(*, reply_id: int, content: str) -> None:
    """Save a streaming reply's text so far; it also shows the reply is alive."""
    Message.objects.filter(pk=reply_id, status=Message.Status.STREAMING).update(
        content=content, updated_at=timezone.now()
    )


def reply_finish(
    *,
    reply: Message,
    content: str,
    status: Message.Status,
    finish_reason: str = "",
    error: str = "",
    error_detail: str = "",
    completion_tokens: int | None = None,
    time_to_first_token_ms: float | None = None,
    duration_ms: float | None = None,
    cited: list[int] | None = None,
) -> Message:
    """Store the reply's final text and figures; partial text is kept on stop.

    ``cited`` are the numbers of the sources the reply used; each stored source
    is marked ``cited`` true or false. ``error`` is for the user, ``error_detail``
    (addresses, exceptions) for staff.
    """
    reply.content = content
    reply.status = status
    reply.finish_reason = finish_reason
    reply.error = error
    reply.error_detail = error_detail
    reply.completion_tokens = completion_tokens
    reply.time_to_first_token_ms = time_to_first_token_ms
    reply.duration_ms = duration_ms
    if reply.sources:
        used = set(cited or [])
        reply.sources = [{**source, "cited": source["number"] in used} for source in reply.sources]
    reply.save(update_fields=[*_FINISH_FIELDS, "sources", "updated_at"])
    Conversation.objects.filter(pk=reply.conversation_id).update(updated_at=timezone.now())
    return reply


def written_reply_save(*, rated: Message, content: str, written: Message | None = None) -> Message:
    """The reply the user wrote instead of ``rated``: a finished sibling of it (the same
    user message answered), marked as written by the user, with no model version.

    It keeps the prompt ``rated`` was written from, the one its writer answered, so
    exports put it under exactly what the model saw. Its sources are the same
    passages, each marked cited by what the user's text drew on. ``written``, the
    user's earlier text for the same reply, is rewritten in place (no second copy).
    """
    if written is None:
        written = Message(
            conversation_id=rated.conversation_id,
            parent_id=rated.parent_id,
            role=Message.Role.ASSISTANT,
            written_by_user=True,
        )
    written.content = content
    written.status = Message.Status.COMPLETE
    written.prompt_messages = rated.prompt_messages
    question = rated.parent.content if rated.parent_id else ""
    written.sources = _cited_sources(content, rated.sources, question=question)
    written.save()
    Conversation.objects.filter(pk=rated.conversation_id).update(updated_at=timezone.now())
    return written


ORPHANED_REPLY_ERROR = "The server stopped while this reply was being written."


def stale_replies_fail(*, older_than_seconds: int) -> int:
    """Mark replies left "streaming" by a process that died as failed, keeping
    the text of their last checkpoint."""
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    return Message.objects.filter(status=Message.Status.STREAMING, updated_at__lt=cutoff).update(
        status=Message.Status.FAILED,
        error=ORPHANED_REPLY_ERROR,
        error_detail=f"no checkpoint for {older_than_seconds} s (beat's stale-reply sweep)",
        updated_at=timezone.now(),
    )


def orphaned_replies_fail(*, streamed_by: str, detail: str) -> int:
    """Fail the replies the web process ``streamed_by`` left streaming when it
    stopped (killed, out of memory), keeping the text of their last checkpoint."""
    return Message.objects.filter(status=Message.Status.STREAMING, streamed_by=streamed_by).update(
        status=Message.Status.FAILED,
        error=ORPHANED_REPLY_ERROR,
        error_detail=detail,
        updated_at=timezone.now(),
    )


def _refuse(errors: dict[str, str]) -> None:
    raise Refusal("invalid", "Some settings are invalid.", fields=errors)


def _cited_sources(content: str, sources: list[dict], *, question: str) -> list[dict]:
    """A copy of ``sources`` with ``cited`` set by what ``content`` used (as for a reply)."""
    if not sources:
        return []
    passages = [
        Passage(
            chunk_id=source.get("chunk") or 0,
            document_id=source.get("document") or 0,
            filename=source.get("filename", ""),
            heading=source.get("heading") or "",
            text=source.get("text", ""),
            number=source.get("number") or 0,
        )
        for source in sources
    ]
    used = set(cited_numbers(content, passages, question=question))
    return [{**source, "cited": source.get("number") in used} for source in sources]


def _title_from(content: str) -> str:
    """The first message on one line, cut at a word boundary to ``TITLE_LENGTH``.

    No "…" is stored: the title is data, and the UI draws its own ellipsis
    (CSS ``text-overflow``) wherever a title does not fit.
    """
    line = " ".join(content.split())
    if len(line) <= TITLE_LENGTH:
        return line
    # The last space at most TITLE_LENGTH in (a space right after it counts).
    space = line.rfind(" ", 0, TITLE_LENGTH + 1)
    # One very long word (a URL, a hash): a hard cut reads better than a stub.
    cut = line[:space] if space >= TITLE_LENGTH // 2 else line[:TITLE_LENGTH]
    return cut.rstrip(" ,;:-")
