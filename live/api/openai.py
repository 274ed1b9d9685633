"""The OpenAI-compatible API other apps use, with an API key (docs/protocol.md):
``/v1/chat/completions`` (streamed or whole), ``/v1/models`` and LoopChat's own
``/v1/feedback``.

A completion goes the chat's way: the owner's rate limit, the chat's message
checks, the version that would serve the owner in the chat (canary included),
and ``live.replies.reply_stream`` writes and stores it. Every refusal answers in
OpenAI's error shape, before anything is written.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from chat import keys, selectors
from chat.models import Conversation, Message
from chat.refusals import Refusal
from chat.serializers import message_data
from chat.turns import api_turns_save
from feedback import selectors as feedback_selectors
from feedback import services as feedback_services
from feedback.written import written_reply_submit
from live.api import openai_shapes as shapes
from live.api.base import json_object
from live.pooled import in_pool
from live.ratelimit import generation_check
from live.replies import reply_stream
from llm.engine.base import Engine, EngineState
from llm.loading import model_label
from training.models import ModelVersion
from training.services import Serving, serving_for

# config/asgi.py puts the process's engine in each HTTP request's scope (live.routing).
ENGINE_SCOPE_KEY = "loopchat_engine"


def _only(method: str) -> Callable:
    """Answer any other HTTP method with 405 in OpenAI's error shape (and ``Allow``)."""

    def decorate(view: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> Callable:
        @functools.wraps(view)
        async def checked(request: HttpRequest) -> HttpResponse:
            if request.method != method:
                refusal = Refusal(
                    "method_not_allowed", f"{request.path} takes {method} requests only."
                )
                response = shapes.error_response(refusal)
                response["Allow"] = method
                return response
            return await view(request)

        return checked

    return decorate


@dataclass(frozen=True)
class _Prepared:
    conversation: Conversation
    user_message: Message
    serving: Serving

    @functools.cached_property
    def model(self) -> str:
        """The served version's name, as its replies record it (named in every chunk)."""
        return self.serving.version or model_label(settings.CHAT_MODEL)


@csrf_exempt
@_only("POST")
async def chat_completions(request: HttpRequest) -> HttpResponse:
    try:
        user = await _key_owner(request)
        parsed = shapes.completion_request(_json_body(request))
        engine = _engine(request)
        await _check_rate(user)
        prepared = await in_pool(_prepare)(user, parsed)
    except Refusal as refusal:
        return shapes.error_response(refusal)
    headers = {shapes.VERSION_HEADER: prepared.model}
    if parsed.stream:
        events = _streamed(engine, prepared, parsed)
        response = StreamingHttpResponse(events, content_type="text/event-stream", headers=headers)
        response["Cache-Control"] = "no-cache"
        return response
    reply = await _reply(engine, prepared, parsed, _ignore)
    if reply.status == Message.Status.FAILED:
        return shapes.error_response(Refusal("server_error", reply.error))
    body = shapes.completion_data(
        reply, model=prepared.model, documents=parsed.changes["use_library"]
    )
    return JsonResponse(body, headers=headers)


@csrf_exempt
@_only("GET")
async def models(request: HttpRequest) -> HttpResponse:
    """The one model a key can use: whichever version serves its owner."""
    try:
        await _key_owner(request)
    except Refusal as refusal:
        return shapes.error_response(refusal)
    active = await in_pool(_active_version)()
    entry = {
        "id": shapes.MODEL_NAME,
        "object": "model",
        "created": int(active.activated_at.timestamp()) if active and active.activated_at else 0,
        "owned_by": "loopchat",
        "version": active.name if active else model_label(settings.CHAT_MODEL),
    }
    return JsonResponse({"object": "list", "data": [entry]})


@csrf_exempt
@_only("POST")
async def feedback(request: HttpRequest) -> HttpResponse:
    """A thumb, a preference or a written reply on a completion: the websocket's services."""
    try:
        user = await _key_owner(request)
        body = _json_body(request)
        kind = body.get("kind")
        if kind not in _FEEDBACK:
            raise Refusal("invalid", "kind is thumb, preference or written_reply.", "kind")
        message_id = shapes.completion_message_id(body.get("completion"))
        answer = await in_pool(_FEEDBACK[kind])(user, message_id, body)
    except Refusal as refusal:
        return shapes.error_response(refusal)
    completion = shapes.completion_id(message_id)
    return JsonResponse({"object": "feedback", "completion": completion, "kind": kind, **answer})


# -- feedback kinds -------------------------------------------------------------------


def _thumb(user: AbstractBaseUser, message_id: object, body: dict) -> dict:
    rating = feedback_services.rating_submit(
        user=user,
        message_id=message_id,
        value=body.get("value"),
        reasons=body.get("reasons"),
        comment=body.get("comment"),
    )
    return {"rating": feedback_selectors.rating_data(rating)}


def _preference(user: AbstractBaseUser, message_id: object, body: dict) -> dict:
    pairs = feedback_services.preference_submit(user=user, chosen_id=message_id)
    return {"rejected": [shapes.completion_id(pair.rejected_id) for pair in pairs]}


def _written_reply(user: AbstractBaseUser, message_id: object, body: dict) -> dict:
    written = written_reply_submit(user=user, message_id=message_id, content=body.get("content"))
    return {
        "reply": message_data(written.reply),
        "pair": feedback_selectors.written_pair_data(written.pair),
    }


_FEEDBACK = {"thumb": _thumb, "preference": _preference, "written_reply": _written_reply}


# -- completions ----------------------------------------------------------------------


async def _streamed(
    engine: Engine, prepared: _Prepared, parsed: shapes.CompletionRequest
) -> AsyncIterator[bytes]:
    """Server-sent events: a role chunk, the text, the finish (with usage and sources
    where asked), ``[DONE]``. A client that leaves stops the reply (stored as stopped)."""
    frames: asyncio.Queue[dict] = asyncio.Queue()
    writing = asyncio.create_task(_reply(engine, prepared, parsed, frames.put))
    # However the reply ends (an exception included), the loop below stops waiting.
    writing.add_done_callback(lambda _: frames.put_nowait({"type": "reply_done"}))
    ids = {}
    try:
        done = False
        while not done:
            for frame in await _waiting_frames(frames):
                if frame["type"] == "reply_started":
                    ids = {
                        "reply_id": frame["message"]["id"],
                        "conversation_id": prepared.conversation.pk,
                    }
                    delta = {"role": "assistant", "content": ""}
                elif frame["type"] == "token":
                    delta = {"content": frame["text"]}
                else:
                    done = done or frame["type"] == "reply_done"
                    continue
                choices = shapes.delta_choice(delta)
                yield shapes.sse(shapes.chunk_data(**ids, model=prepared.model, choices=choices))
        reply = await writing
        for event in _finish_events(reply, ids, prepared, parsed):
            yield event
    finally:
        if not writing.done():
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)


async def _waiting_frames(frames: asyncio.Queue[dict]) -> list[dict]:
    """The next frame and every frame already queued behind it, with consecutive
    tokens joined: a client that reads slower than the model writes (or a busy
    server) gets fewer, longer deltas instead of falling behind one per token."""
    waiting = [await frames.get()]
    while not frames.empty():
        frame = frames.get_nowait()
        if frame["type"] == "token" and waiting[-1]["type"] == "token":
            waiting[-1] = {**waiting[-1], "text": waiting[-1]["text"] + frame["text"]}
        else:
            waiting.append(frame)
    return waiting


def _finish_events(
    reply: Message, ids: dict, prepared: _Prepared, parsed: shapes.CompletionRequest
) -> list[bytes]:
    if reply.status == Message.Status.FAILED:
        return [
            shapes.sse(shapes.error_data(Refusal("server_error", reply.error))),
            shapes.sse("[DONE]"),
        ]
    extra = {"sources": reply.sources} if parsed.changes["use_library"] else {}
    choices = shapes.delta_choice({}, shapes.finish_reason(reply))
    events = [shapes.sse(shapes.chunk_data(**ids, model=prepared.model, choices=choices, **extra))]
    if parsed.include_usage:
        usage = shapes.usage_data(reply)
        events.append(
            shapes.sse(shapes.chunk_data(**ids, model=prepared.model, choices=[], usage=usage))
        )
    return [*events, shapes.sse("[DONE]")]


async def _reply(
    engine: Engine, prepared: _Prepared, parsed: shapes.CompletionRequest, send
) -> Message:
    return await reply_stream(
        engine=engine,
        conversation=prepared.conversation,
        user_message=prepared.user_message,
        send=send,
        nonce=None,
        serving=prepared.serving,
        seed=parsed.seed,
        stop=parsed.stop,
    )


async def _ignore(frame: dict) -> None:
    """A whole completion reads the stored reply at the end, not the frames."""


# -- helpers --------------------------------------------------------------------------


def _prepare(user: AbstractBaseUser, parsed: shapes.CompletionRequest) -> _Prepared:
    conversation, user_message = api_turns_save(
        owner=user,
        turns=parsed.turns,
        changes=parsed.changes,
        conversation_id=_conversation_id(user, parsed.conversation_id),
    )
    # Chosen now, not as the reply starts: the header names it before the body.
    serving = serving_for(conversation_id=conversation.pk)
    return _Prepared(conversation, user_message, serving)


def _conversation_id(user: AbstractBaseUser, value: object) -> object:
    """``conversation`` as sent: LoopChat's id, or a completion id naming one of its
    replies (what clients that keep only the response's ``id`` have, LangChain's)."""
    if not (isinstance(value, str) and value.startswith(shapes.COMPLETION_PREFIX)):
        return value
    try:
        reply = selectors.message_get(owner=user, message_id=shapes.completion_message_id(value))
    except Message.DoesNotExist:
        raise Refusal(
            "not_found", "No such completion (or it is not yours).", "conversation"
        ) from None
    return reply.conversation_id


async def _key_owner(request: HttpRequest) -> AbstractBaseUser:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Refusal(
            "invalid_api_key",
            "No API key: send it as 'Authorization: Bearer <key>' (create one in Settings).",
        )
    lookup = in_pool(keys.api_key_owner)
    return await lookup(secret=secret.strip())


def _json_body(request: HttpRequest) -> dict:
    limit = settings.API_MAX_BODY_BYTES
    length = request.headers.get("Content-Length", "")
    too_large = Refusal("too_large", f"The request body is larger than {limit} bytes.")
    try:
        if (length.isdigit() and int(length) > limit) or len(request.body) > limit:
            raise too_large
    except RequestDataTooBig:  # past Django's own DATA_UPLOAD_MAX_MEMORY_SIZE
        raise too_large from None
    refusal = Refusal("bad_json", "The request body must be a JSON object.")
    return json_object(request, refusal=refusal)


def _engine(request: HttpRequest) -> Engine:
    engine = getattr(request, "scope", {}).get(ENGINE_SCOPE_KEY)
    if engine is None or engine.state is EngineState.FAILED:
        raise Refusal("engine_unavailable", "The model could not be loaded.")
    return engine


async def _check_rate(user: AbstractBaseUser) -> None:
    retry_after = await generation_check(user_id=user.pk)
    if retry_after is not None:
        raise Refusal(
            "rate_limit_exceeded",
            f"Too many messages; try again in {retry_after:.0f} s.",
            retry_after=retry_after,
        )


def _active_version() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
