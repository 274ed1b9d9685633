"""The wire format between web processes and inference workers: plain dicts.

Requests and events cross the channel layer (msgpack over Redis) as JSON-like
dicts; these functions are the one place that knows their shape.
"""

from __future__ import annotations

from llm.engine import base as events
from llm.sampling import SamplingParams


def request_to_wire(request: events.GenerationRequest) -> dict:
    return {
        "request_id": request.request_id,
        "messages": request.messages,
        "sampling": request.sampling.as_dict(),
        "version": request.version,
        "adapter_path": request.adapter_path,
    }


def request_from_wire(data: dict) -> events.GenerationRequest:
    return events.GenerationRequest(
        messages=data["messages"],
        sampling=SamplingParams.from_dict(data["sampling"]),
        version=data.get("version"),
        adapter_path=data.get("adapter_path"),
        request_id=data["request_id"],
    )


def event_to_wire(event: events.GenerationEvent) -> dict:
    if isinstance(event, events.Token):
        return {"type": "inference.token", "text": event.text, "token_id": event.token_id}
    if isinstance(event, events.Started):
        return {
            "type": "inference.started",
            "prompt_messages": event.prompt_messages,
            "prompt_tokens": event.prompt_tokens,
            "model_version": event.model_version,
        }
    return {
        "type": "inference.finished",
        "finish_reason": str(event.finish_reason),
        "completion_tokens": event.completion_tokens,
        "time_to_first_token": event.time_to_first_token,
        "duration": event.duration,
        "error": event.error,
    }


def event_from_wire(message: dict) -> events.GenerationEvent:
    kind = message["type"]
    if kind == "inference.token":
        return events.Token(message["text"], message["token_id"])
    if kind == "inference.started":
        return events.Started(
            message["prompt_messages"], message["prompt_tokens"], message["model_version"]
        )
    return events.Finished(
        events.FinishReason(message["finish_reason"]),
        message["completion_tokens"],
        message["time_to_first_token"],
        message["duration"],
        message["error"],
    )
