"""LoopChat's own engine behind the OpenAI protocol: the inference worker's HTTP face.

A plain ASGI application (no web framework) over any :class:`Engine`, speaking
the part of vLLM's OpenAI-compatible API that :class:`OpenAIEngine` uses, so a
web process reaches LoopChat's inference workers exactly as it reaches vLLM:

- ``POST /v1/chat/completions``: streamed (server-sent events) or not; the
  ``model`` is the base model's name or a registered version; ``temperature``,
  ``top_p``, ``max_tokens``, ``seed``. A client that disconnects stops its
  generation. The first chunk carries ``prompt_messages`` (the messages the
  model saw, after fitting the context window) and ``usage.prompt_tokens``.
- ``POST /v1/load_lora_adapter`` / ``/v1/unload_lora_adapter``: register a
  trained version (``lora_name``, ``lora_path``); its adapter loads on first use.
- ``GET /health`` (200 once the model is loaded, 503 before), ``GET /v1/models``,
  and ``GET /metrics`` when the server was given a way to write them (Prometheus text).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

from llm.engine.base import (
    Engine,
    EngineState,
    Finished,
    FinishReason,
    GenerationRequest,
    Started,
    Token,
)
from llm.sampling import InvalidSampling, SamplingParams

MAX_BODY_BYTES = 4 * 1024 * 1024


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "BadRequestError"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "code": self.status}}


class OpenAIServer:
    def __init__(
        self,
        engine: Engine,
        *,
        model: str,
        metrics: Callable[[], tuple[bytes, str]] | None = None,
    ):
        self.engine = engine
        self.model = model  # the base model's name, as requests and replies name it
        self.adapters: dict[str, str] = {}  # version name -> adapter folder
        self.metrics = metrics  # () -> (body, content type), for GET /metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"])
        try:
            if route == ("GET", "/health"):
                await self._health(send)
            elif route == ("GET", "/metrics") and self.metrics:
                await self._metrics(send)
            elif route == ("GET", "/v1/models"):
                names = [self.model, *self.adapters]
                data = [{"id": name, "object": "model", "owned_by": "loopchat"} for name in names]
                await _json(send, 200, {"object": "list", "data": data})
            elif route == ("POST", "/v1/load_lora_adapter"):
                await self._load(await _body(receive), send)
            elif route == ("POST", "/v1/unload_lora_adapter"):
                await self._unload(await _body(receive), send)
            elif route == ("POST", "/v1/chat/completions"):
                await self._complete(await _body(receive), receive, send)
            else:
                raise ApiError(404, f"no route {scope['method']} {scope['path']}", "NotFoundError")
        except ApiError as error:
            await _json(send, error.status, error.body())

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.engine.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.engine.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _health(self, send) -> None:
        state = self.engine.state
        status = {EngineState.READY: 200, EngineState.LOADING: 503}.get(state, 500)
        await _json(send, status, {"status": state.value})

    async def _metrics(self, send) -> None:
        body, content_type = self.metrics()
        headers = [(b"content-type", content_type.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _load(self, body: dict, send) -> None:
        name, path = body.get("lora_name"), body.get("lora_path")
        if not isinstance(name, str) or not name or not isinstance(path, str):
            raise ApiError(400, "lora_name and lora_path are required")
        if not Path(path).is_dir():
            raise ApiError(404, f"No adapter found for {path}", "NotFoundError")
        self.adapters[name] = path
        await _json(send, 200, {"status": f"adapter {name} registered"})

    async def _unload(self, body: dict, send) -> None:
        if self.adapters.pop(body.get("lora_name"), None) is None:
            raise ApiError(404, f"adapter {body.get('lora_name')!r} is not loaded", "NotFoundError")
        await _json(send, 200, {"status": "unloaded"})

    def _request(self, body: dict) -> GenerationRequest:
        model = body.get("model", self.model)
        if model != self.model and model not in self.adapters:
            names = ", ".join([self.model, *self.adapters])
            raise ApiError(
                404, f"The model `{model}` does not exist. Valid models: {names}.", "NotFoundError"
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
        ):
            raise ApiError(400, "messages must be a list of {role, content} objects")
        defaults = SamplingParams()
        try:
            sampling = SamplingParams(
                temperature=body.get("temperature", defaults.temperature),
                top_p=body.get("top_p", defaults.top_p),
                max_new_tokens=body.get("max_tokens") or defaults.max_new_tokens,
                seed=body.get("seed"),
            )
        except InvalidSampling as error:
            raise ApiError(400, str(error)) from error
        adapter = None if model == self.model else model
        return GenerationRequest(
            messages=[{"role": m.get("role", "user"), "content": m["content"]} for m in messages],
            sampling=sampling,
            version=adapter,
            adapter_path=self.adapters.get(adapter) if adapter else None,
        )

    async def _complete(self, body: dict, receive, send) -> None:
        request = self._request(body)
        if not body.get("stream"):
            await self._complete_whole(request, body, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        generating = asyncio.ensure_future(self._stream(request, body, send))
        watching = asyncio.ensure_future(_disconnected(receive))
        await asyncio.wait({generating, watching}, return_when=asyncio.FIRST_COMPLETED)
        if not generating.done():  # the client left: closing the stream cancels the request
            generating.cancel()
        watching.cancel()
        await asyncio.gather(generating, watching, return_exceptions=True)

    async def _stream(self, request: GenerationRequest, body: dict, send) -> None:
        chunk = _Chunks(body.get("model", self.model))
        tokens = prompt_tokens = 0
        async with aclosing(self.engine.stream(request)) as events:
            async for event in events:
                if isinstance(event, Started):
                    prompt_tokens = event.prompt_tokens
                    first = chunk.delta({"role": "assistant", "content": ""})
                    first["prompt_messages"] = event.prompt_messages
                    first["usage"] = _usage(prompt_tokens, 0)
                    await _event(send, first)
                elif isinstance(event, Token):
                    tokens += 1
                    await _event(send, chunk.delta({"content": event.text}))
                elif isinstance(event, Finished):
                    if event.finish_reason is FinishReason.ERROR:
                        await _event(send, ApiError(500, event.error, "InternalServerError").body())
                    else:
                        reason = "length" if event.finish_reason is FinishReason.LENGTH else "stop"
                        await _event(send, chunk.delta({}, finish_reason=reason))
                        last = chunk.delta({})
                        last["choices"], last["usage"] = [], _usage(prompt_tokens, tokens)
                        await _event(send, last)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    async def _complete_whole(self, request: GenerationRequest, body: dict, send) -> None:
        parts, reason, prompt_tokens = [], "stop", 0
        async with aclosing(self.engine.stream(request)) as events:
            async for event in events:
                if isinstance(event, Started):
                    prompt_tokens = event.prompt_tokens
                elif isinstance(event, Token):
                    parts.append(event.text)
                elif isinstance(event, Finished):
                    if event.finish_reason is FinishReason.ERROR:
                        raise ApiError(500, event.error, "InternalServerError")
                    reason = "length" if event.finish_reason is FinishReason.LENGTH else "stop"
        chunk = _Chunks(body.get("model", self.model))
        answer = {
            "id": chunk.id,
            "object": "chat.completion",
            "created": chunk.created,
            "model": chunk.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(parts)},
                    "finish_reason": reason,
                }
            ],
            "usage": _usage(prompt_tokens, len(parts)),
        }
        await _json(send, 200, answer)


class _Chunks:
    def __init__(self, model: str):
        self.id, self.created, self.model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model

    def delta(self, delta: dict, finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }


def _usage(prompt: int, completion: int) -> dict:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _body(receive) -> dict:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the client went away")
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "request body too large")
        if not message.get("more_body"):
            break
    try:
        body = json.loads(b"".join(chunks) or b"{}")
    except ValueError as error:
        raise ApiError(400, f"the body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


async def _json(send, status: int, body: dict) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


async def _event(send, data: dict) -> None:
    await send(
        {
            "type": "http.response.body",
            "body": f"data: {json.dumps(data)}\n\n".encode(),
            "more_body": True,
        }
    )
