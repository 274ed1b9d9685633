"""The OpenAI chat-completions protocol at LoopChat's edge: requests parsed into
LoopChat's terms, replies and refusals shaped as OpenAI's (docs/protocol.md).

Validation is the chat's: each message passes ``message_text_check``, the
sampling settings ``SamplingParams``, the system prompt ``conversation_update``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from django.conf import settings
from django.http import JsonResponse

from chat.models import Message
from chat.refusals import Refusal
from chat.services import message_text_check
from chat.turns import Turn
from llm.sampling import InvalidSampling, SamplingParams

# The name /v1/models lists and requests use: whichever version serves the key's
# owner (the response's ``model`` and the X-LoopChat-Version header say which).
MODEL_NAME = "loopchat"
COMPLETION_PREFIX = "chatcmpl-"
VERSION_HEADER = "X-LoopChat-Version"
MAX_STOP_SEQUENCES = 4

_SYSTEM_ROLES = ("system", "developer")
_PARAM_NAMES = {"max_new_tokens": "max_tokens", "message": "completion", "content": "messages"}
# Status and OpenAI's error type per refusal code (400 and invalid_request_error otherwise).
_STATUS = {
    "invalid_api_key": (401, "invalid_request_error"),
    "not_found": (404, "invalid_request_error"),
    "model_not_found": (404, "invalid_request_error"),
    "method_not_allowed": (405, "invalid_request_error"),
    "too_large": (413, "invalid_request_error"),
    "rate_limit_exceeded": (429, "requests"),
    "engine_unavailable": (503, "server_error"),
    "service_unavailable": (503, "server_error"),
    "server_error": (500, "server_error"),
}


@dataclass(frozen=True)
class CompletionRequest:
    turns: list[Turn]
    changes: dict  # system prompt, sampling and use_library, for the stored conversation
    seed: int | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    conversation_id: object


def completion_request(body: dict) -> CompletionRequest:
    """A /v1/chat/completions body in LoopChat's terms; ``Refusal`` names the bad field."""
    if body.get("model") != MODEL_NAME:
        raise Refusal(
            "model_not_found",
            f"The model `{body.get('model')}` does not exist; use `{MODEL_NAME}`.",
            "model",
        )
    if body.get("n") not in (None, 1):
        raise Refusal("invalid", "Only one choice per request is supported (n = 1).", "n")
    system_prompt, turns = _messages(body.get("messages"))
    sampling = _sampling(body)
    documents = body.get("documents", False)
    if not isinstance(documents, bool):
        raise Refusal("invalid", "documents is true or false.", "documents")
    options = body.get("stream_options") or {}
    return CompletionRequest(
        turns=turns,
        changes={
            "system_prompt": system_prompt,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_new_tokens": sampling.max_new_tokens,
            "use_library": documents,
        },
        seed=sampling.seed,
        stop=_stop(body.get("stop")),
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        conversation_id=body.get("conversation"),
    )


def _messages(messages: object) -> tuple[str, list[Turn]]:
    """The leading system messages as one system prompt, then the user and
    assistant turns; the last one is the user's message to answer."""
    if not isinstance(messages, list) or not messages:
        raise Refusal("invalid", "messages must be a non-empty list.", "messages")
    system, turns = [], []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise Refusal("invalid", f"messages[{index}] must be an object.", "messages")
        role, content = message.get("role"), _text(message.get("content"), index)
        if role in _SYSTEM_ROLES and not turns:
            system.append(content)
        elif role in (Message.Role.USER, Message.Role.ASSISTANT):
            # The chat's checks; a model's reply may be blank (a user's message may not).
            if role == Message.Role.USER or not isinstance(content, str) or content.strip():
                message_text_check(content, noun="message", empty=f"messages[{index}] is empty.")
            turns.append(Turn(role=role, content=content))
        else:
            raise Refusal(
                "invalid",
                f"messages[{index}]: the role {role!r} is not supported here "
                "(system messages come first, then user and assistant ones).",
                "messages",
            )
    if not turns or turns[-1].role != Message.Role.USER:
        raise Refusal("invalid", "The last message must be the user's.", "messages")
    return "\n\n".join(system), turns


def _text(content: object, index: int) -> object:
    """A message's text: a string, or OpenAI's list of text parts joined."""
    if isinstance(content, list):
        if not all(isinstance(part, dict) and part.get("type") == "text" for part in content):
            raise Refusal(
                "invalid", f"messages[{index}]: only text parts are supported.", "messages"
            )
        return "".join(str(part.get("text", "")) for part in content)
    return content


def _sampling(body: dict) -> SamplingParams:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    values = {
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_new_tokens": max_tokens,
        "seed": body.get("seed"),
    }
    defaults = {
        "temperature": settings.CHAT_DEFAULT_TEMPERATURE,
        "top_p": settings.CHAT_DEFAULT_TOP_P,
        "max_new_tokens": settings.CHAT_DEFAULT_MAX_NEW_TOKENS,
    }
    try:
        return SamplingParams(**{**defaults, **{k: v for k, v in values.items() if v is not None}})
    except InvalidSampling as error:
        raise Refusal("invalid", str(error), error.field) from None


def _stop(stop: object) -> tuple[str, ...]:
    stops = [stop] if isinstance(stop, str) else stop
    if stop is None:
        return ()
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOP_SEQUENCES
        or not all(isinstance(item, str) and item for item in stops)
    ):
        raise Refusal(
            "invalid", f"stop is a string or a list of up to {MAX_STOP_SEQUENCES}.", "stop"
        )
    return tuple(stops)


# -- answers ------------------------------------------------------------------------


def completion_id(message_id: int) -> str:
    return f"{COMPLETION_PREFIX}{message_id}"


def completion_message_id(value: object) -> object:
    """The stored reply a completion id names (``chatcmpl-12`` or 12); anything
    else goes on for the feedback service to refuse."""
    if isinstance(value, str) and value.startswith(COMPLETION_PREFIX):
        number = value.removeprefix(COMPLETION_PREFIX)
        return int(number) if number.isascii() and number.isdigit() else value
    return value


def usage_data(reply: Message) -> dict:
    prompt, completion = reply.prompt_tokens or 0, reply.completion_tokens or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def finish_reason(reply: Message) -> str:
    return "length" if reply.finish_reason == "length" else "stop"


def completion_data(reply: Message, *, model: str, documents: bool) -> dict:
    """The whole answer (``chat.completion``), with LoopChat's extension fields."""
    body = {
        "id": completion_id(reply.pk),
        "object": "chat.completion",
        "created": int(reply.created_at.timestamp()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(reply),
            }
        ],
        "usage": usage_data(reply),
        "conversation": reply.conversation_id,
    }
    if documents:
        body["sources"] = reply.sources
    return body


def chunk_data(reply_id: int, conversation_id: int, *, model: str, choices: list, **extra) -> dict:
    """One ``chat.completion.chunk`` of a streamed answer."""
    return {
        "id": completion_id(reply_id),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "conversation": conversation_id,
        **extra,
    }


def delta_choice(delta: dict, reason: str | None = None) -> list[dict]:
    return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]


def sse(data: dict | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    return f"data: {text}\n\n".encode()


def error_data(refusal: Refusal) -> dict:
    """OpenAI's error body: message, type, param, code (LoopChat's refusal code)."""
    _, kind = _STATUS.get(refusal.code, (400, "invalid_request_error"))
    param = _PARAM_NAMES.get(refusal.field, refusal.field) if refusal.field else None
    if refusal.fields:
        param = _PARAM_NAMES.get(next(iter(refusal.fields)), next(iter(refusal.fields)))
        message = " ".join(refusal.fields.values())
    else:
        message = refusal.message
    return {"error": {"message": message, "type": kind, "param": param, "code": refusal.code}}


def error_response(refusal: Refusal) -> JsonResponse:
    status, _ = _STATUS.get(refusal.code, (400, ""))
    response = JsonResponse(error_data(refusal), status=status)
    if "retry_after" in refusal.extra:
        response["Retry-After"] = str(max(1, round(float(refusal.extra["retry_after"]))))
    return response
