"""Streaming one assistant reply: engine → protocol frames → stored message.

Runs as a task of the websocket consumer. Cancelling the task (stop button,
closed browser, server shutting down) stops generation and keeps the partial
text as "stopped"; so does a ``send`` that raises ``ClientGone``.

A failed reply tells its user what happened in words (``error``); the engine's
details, which may name servers, go to the log and to ``error_detail`` (staff).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from django.conf import settings
from langchain_core.messages import AIMessageChunk

from chat import selectors, services
from chat.models import Conversation, Message
from chat.serializers import message_data
from live.chain import chain_inputs, reply_model, reply_prompt
from live.frames import nonce_field
from live.grounding import grounding_step
from live.liveness import process_identity
from live.metrics import web as metrics
from live.pooled import in_pool
from llm.engine.base import Engine, Failure
from llm.retrieval.grounding import cited_numbers
from llm.retrieval.passages import Passage
from training.services import Serving, serving_for

logger = logging.getLogger(__name__)

Send = Callable[[dict], Awaitable[None]]


class ClientGone(Exception):
    """The browser's socket closed under a send; nobody reads this reply any more."""


# What users read when a reply fails, by why (``Failure``); "internal": this code raised.
AGAIN = "Regenerate to try again."
USER_ERRORS = {
    Failure.UNREACHABLE: f"No model server is answering right now. {AGAIN}",
    Failure.SERVER_LOST: f"The model server stopped answering during the reply. {AGAIN}",
    Failure.SERVER_ERROR: f"The model server could not finish this reply. {AGAIN}",
    Failure.ENGINE: f"The model could not finish this reply. {AGAIN}",
    "internal": f"Something went wrong while writing this reply. {AGAIN}",
}

_STATUS_FOR_REASON = {
    "stop": Message.Status.COMPLETE,
    "length": Message.Status.COMPLETE,
    "cancelled": Message.Status.STOPPED,
    "error": Message.Status.FAILED,
}


@dataclass
class _Progress:
    started_at: float = field(default_factory=time.perf_counter)
    parts: list[str] = field(default_factory=list)
    first_token_at: float | None = None
    tokens: int = 0
    finished: dict = field(default_factory=dict)
    # The numbered passages in the prompt (a grounded reply); none for a plain one.
    passages: list[Passage] = field(default_factory=list)
    # The user's message as written: its words are no evidence of a passage used.
    question: str = ""
    # Stop sequences (the API's ``stop``): the reply ends before the first one it writes.
    stop: tuple[str, ...] = ()
    sent: int = 0  # characters sent so far, when stop sequences hold some back

    @property
    def failure(self) -> str:
        """Why the reply failed, in one word ("" unless it did)."""
        if self.finished.get("finish_reason") != "error":
            return ""
        return self.finished.get("failure") or Failure.ENGINE

    def outcome(self) -> dict:
        reason = self.finished.get("finish_reason", "cancelled")
        now = time.perf_counter()
        first = self.first_token_at
        content = "".join(self.parts)
        return {
            "content": content,
            "cited": (
                cited_numbers(content, self.passages, question=self.question)
                if self.passages
                else []
            ),
            "status": _STATUS_FOR_REASON.get(reason, Message.Status.FAILED),
            "finish_reason": reason,
            "error": USER_ERRORS.get(self.failure, USER_ERRORS["internal"]) if self.failure else "",
            "error_detail": self.finished.get("error", ""),
            # What was streamed counts, whatever a failing engine reported (often 0).
            "completion_tokens": max(self.finished.get("completion_tokens", 0), self.tokens),
            "time_to_first_token_ms": None if first is None else (first - self.started_at) * 1000,
            "duration_ms": (now - self.started_at) * 1000,
        }


async def reply_stream(
    *,
    engine: Engine,
    conversation: Conversation,
    user_message: Message,
    send: Send,
    nonce: str | None,
    serving: Serving | None = None,
    reply: Message | None = None,
    seed: int | None = None,
    stop: tuple[str, ...] = (),
) -> Message:
    """Generate with ``engine``, stream and store a reply to ``user_message``.

    ``serving`` picks the version and ``reply`` is the empty reply to fill (both
    the arena's); by default the training app decides (canary or active version)
    and a new reply is created. ``seed`` and ``stop`` are the API's (live.api.openai).
    """
    if reply:
        reply = await _claim_reply(reply)
    else:
        reply = await _create_reply(conversation, user_message, seed)
    progress = _Progress(stop=stop)
    checkpoints = asyncio.create_task(_checkpoint_regularly(reply, progress))
    metrics.reply_began()
    try:
        await send({"type": "reply_started", "message": message_data(reply), **nonce_field(nonce)})
        await _generate(engine, conversation, user_message, reply, progress, send, serving, seed)
    except asyncio.CancelledError:
        await _finish_even_if_cancelled(reply, progress, send, nonce)
        raise
    except ClientGone:
        logger.info("reply %s stopped: its socket closed", reply.pk)
    except Exception as error:  # noqa: BLE001 - the reply fails, the socket lives
        logger.exception("reply %s failed", reply.pk)
        progress.finished = {
            "finish_reason": "error",
            "failure": "internal",
            "error": f"generation failed: {type(error).__name__}: {error}",
        }
    finally:
        checkpoints.cancel()
    return await _finish_even_if_cancelled(reply, progress, send, nonce)


async def _checkpoint_regularly(reply: Message, progress: _Progress) -> None:
    """Save the text so far every few seconds, waiting in a queue included: if this
    process dies, the reply keeps it and the stale-reply task sees it was orphaned."""
    while True:
        await asyncio.sleep(settings.CHAT_REPLY_CHECKPOINT_SECONDS)
        await in_pool(services.reply_checkpoint)(reply_id=reply.pk, content="".join(progress.parts))


async def _finish_even_if_cancelled(
    reply: Message, progress: _Progress, send: Send, nonce: str | None
) -> Message:
    """Save the reply, waiting it out if this task is cancelled meanwhile.

    A closed socket both fails a send and cancels the task (the consumer's
    disconnect), and a server shutting down cancels every consumer: the save,
    one short write, must still happen, and before the consumer ends.
    """
    saving = asyncio.ensure_future(_finish(reply, progress, send, nonce))
    cancelled = False
    while not saving.done():
        try:
            await asyncio.shield(saving)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return saving.result()


async def _generate(
    engine: Engine,
    conversation: Conversation,
    user_message: Message,
    reply: Message,
    progress: _Progress,
    send: Send,
    serving: Serving | None,
    seed: int | None = None,
) -> None:
    path = await in_pool(selectors.message_path)(message=user_message)
    if serving is None:
        # Which version writes it is the training app's call (canary or active version).
        serving = await in_pool(serving_for)(conversation_id=conversation.pk)
    inputs = await grounding_step(conversation=conversation).ainvoke(
        chain_inputs(conversation=conversation, path=path)
    )
    progress.passages = inputs["passages"]
    progress.question = user_message.content
    if progress.passages:
        sources = [passage.as_dict() for passage in progress.passages]
        await send({"type": "sources", "message": reply.pk, "sources": sources})
    elif inputs.get("unmatched"):
        # The library was searched and held nothing on this: the user is told so.
        await send({"type": "sources", "message": reply.pk, "sources": [], "matched": False})
    model = reply_model(engine=engine, conversation=conversation, serving=serving, seed=seed)
    chunks = model.astream(reply_prompt(inputs))
    async with aclosing(chunks):  # leaving early (ClientGone, a stop sequence) ends it now
        async for chunk in chunks:
            if await _on_chunk(chunk, reply, progress, send):
                break
    if progress.stop:
        await _send_held_back(reply, progress, send, final=True)


async def _on_chunk(chunk: AIMessageChunk, reply: Message, progress: _Progress, send: Send) -> bool:
    """Handle one chunk; True when the reply reached a stop sequence (generation ends)."""
    event = chunk.response_metadata.get("event")
    if chunk.content:
        if progress.first_token_at is None:
            progress.first_token_at = time.perf_counter()
        progress.parts.append(chunk.content)
        progress.tokens += 1
        if progress.stop:
            return await _send_held_back(reply, progress, send)
        await send({"type": "token", "message": reply.pk, "text": chunk.content})
    elif event == "started":
        await _record_start(reply, chunk.response_metadata, progress.passages)
    elif event == "finished":
        progress.finished = chunk.response_metadata
    return False


async def _send_held_back(
    reply: Message, progress: _Progress, send: Send, *, final: bool = False
) -> bool:
    """Send the text up to a stop sequence, holding back an end that may begin one.

    The first stop sequence written ends the reply just before it (it is not
    kept, as in OpenAI's API): True then, and the reply is finished as "stop".
    """
    text = "".join(progress.parts)
    found = [index for index in (text.find(stop) for stop in progress.stop) if index >= 0]
    if found:
        end = min(found)
        progress.parts = [text[:end]]
        progress.finished = {"finish_reason": "stop", "completion_tokens": progress.tokens}
    else:
        end = len(text) if final else len(text) - _stop_prefix_length(text, progress.stop)
    if end > progress.sent:
        await send({"type": "token", "message": reply.pk, "text": text[progress.sent : end]})
        progress.sent = end
    return bool(found)


def _stop_prefix_length(text: str, stops: tuple[str, ...]) -> int:
    """The length of the longest end of ``text`` that begins one of ``stops``."""
    longest = 0
    for stop in stops:
        for length in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:length]):
                longest = length
                break
    return longest


async def _finish(reply: Message, progress: _Progress, send: Send, nonce: str | None) -> Message:
    outcome = progress.outcome()
    metrics.reply_ended(outcome=outcome, failure=progress.failure)
    if progress.failure:
        logger.warning(
            "reply %s failed (%s): %s", reply.pk, progress.failure, outcome["error_detail"]
        )
    reply = await in_pool(services.reply_finish)(reply=reply, **outcome)
    try:
        await send({"type": "reply_done", "message": message_data(reply), **nonce_field(nonce)})
    except Exception:  # noqa: BLE001 - the browser may be gone; the reply is saved
        logger.debug("could not send reply_done for %s", reply.pk)
    return reply


@in_pool
def _create_reply(conversation: Conversation, user_message: Message, seed: int | None) -> Message:
    return services.reply_create(
        conversation=conversation, parent=user_message, streamed_by=process_identity(), seed=seed
    )


@in_pool
def _claim_reply(reply: Message) -> Message:
    services.reply_claim(reply=reply, streamed_by=process_identity())
    return reply


@in_pool
def _record_start(reply: Message, metadata: dict, passages: list[Passage]) -> None:
    services.reply_start(
        reply=reply,
        model_version=metadata["model_version"],
        prompt_messages=metadata["prompt_messages"],
        prompt_tokens=metadata["prompt_tokens"],
        sources=[passage.as_dict() for passage in passages],
    )
