"""Which engine serves this process, and the split web / inference-worker mode.

``INFERENCE_MODE=local`` (the default): each web process owns a LocalEngine.
``INFERENCE_MODE=workers``: web processes hold a :class:`RemoteEngine` that
sends each request over the Redis channel layer to the ``inference`` channel;
any process running ``python manage.py runworker inference`` picks it up with
:class:`InferenceWorkerConsumer`, streams tokens back to the requester's own
reply channel, and accepts cancellation on its private channel.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator

from channels.consumer import AsyncConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from llm.engine.base import (
    Engine,
    EngineState,
    Finished,
    FinishReason,
    GenerationEvent,
    GenerationRequest,
    Started,
    Token,
)
from llm.engine.local import LocalEngine
from llm.loading import load_model
from llm.sampling import InvalidSampling, SamplingParams

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def get_engine() -> Engine:
    """The engine web consumers use, per ``INFERENCE_MODE``."""
    if settings.INFERENCE_MODE == "workers":
        return _singleton("remote", lambda: RemoteEngine(settings.INFERENCE_CHANNEL))
    return local_engine()


def local_engine() -> LocalEngine:
    """This process's own model (web process in local mode, or inference worker)."""

    def build() -> LocalEngine:
        return LocalEngine(
            lambda: load_model(
                settings.CHAT_MODEL,
                settings.MODEL_CACHE_DIR,
                settings.MODEL_DEVICE or None,
                threads=settings.MODEL_THREADS,
            ),
            max_batch_size=settings.ENGINE_MAX_BATCH_SIZE,
        )

    return _singleton("local", build)


def preload_engine() -> None:
    """Start loading the model as the web server starts, not on the first message."""
    if settings.ENGINE_PRELOAD and settings.INFERENCE_MODE == "local":
        local_engine().start()


def reset_engine() -> None:
    """Forget the engines (tests switch models). A running engine thread is left to idle."""
    with _lock:
        _engines.clear()


def _singleton(key: str, build) -> Engine:
    with _lock:
        if key not in _engines:
            _engines[key] = build()
        return _engines[key]


# -- the wire format between web and inference worker ----------------------------


def _request_to_wire(request: GenerationRequest) -> dict:
    return {
        "request_id": request.request_id,
        "messages": request.messages,
        "sampling": request.sampling.as_dict(),
        "version": request.version,
        "adapter_path": request.adapter_path,
    }


def _request_from_wire(data: dict) -> GenerationRequest:
    return GenerationRequest(
        messages=data["messages"],
        sampling=SamplingParams.from_dict(data["sampling"]),
        version=data.get("version"),
        adapter_path=data.get("adapter_path"),
        request_id=data["request_id"],
    )


def _event_to_wire(event: GenerationEvent) -> dict:
    if isinstance(event, Token):
        return {"type": "inference.token", "text": event.text, "token_id": event.token_id}
    if isinstance(event, Started):
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


def _event_from_wire(message: dict) -> GenerationEvent:
    kind = message["type"]
    if kind == "inference.token":
        return Token(message["text"], message["token_id"])
    if kind == "inference.started":
        return Started(
            message["prompt_messages"], message["prompt_tokens"], message["model_version"]
        )
    return Finished(
        FinishReason(message["finish_reason"]),
        message["completion_tokens"],
        message["time_to_first_token"],
        message["duration"],
        message["error"],
    )


class RemoteEngine(Engine):
    """Runs requests on inference workers reached over the channel layer.

    Replies for every request of this process arrive on one mailbox channel,
    read by one long-lived task and handed out by request id. Channel-layer
    receives are never cancelled (channels-redis does not survive that), so a
    stopped request just stops listening and tells its worker to cancel.
    """

    def __init__(self, channel: str):
        self.channel = channel
        self._mailbox: _Mailbox | None = None

    @property
    def state(self) -> EngineState:
        return EngineState.READY  # workers report failures per request

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        mailbox = await self._current_mailbox()
        events = mailbox.open(request.request_id)
        await mailbox.layer.send(
            self.channel,
            {
                "type": "inference.request",
                "reply_channel": mailbox.channel,
                "request": _request_to_wire(request),
            },
        )
        worker, finished = None, False
        try:
            while not finished:
                wait = settings.INFERENCE_START_TIMEOUT
                try:
                    message = await asyncio.wait_for(events.get(), wait)
                except TimeoutError:
                    finished = True
                    yield Finished(
                        FinishReason.ERROR, 0, None, wait, "no inference worker answered"
                    )
                    return
                worker = message.get("worker", worker)
                event = _event_from_wire(message)
                finished = isinstance(event, Finished)
                yield event
        finally:
            mailbox.close(request.request_id)
            if worker and not finished:
                await mailbox.layer.send(
                    worker, {"type": "inference.cancel", "request_id": request.request_id}
                )

    async def _current_mailbox(self) -> _Mailbox:
        loop = asyncio.get_running_loop()
        if self._mailbox is None or self._mailbox.loop is not loop:
            self._mailbox = await _Mailbox.open_on(loop)
        return self._mailbox


class _Mailbox:
    """One reply channel per process and event loop, demultiplexed by request id."""

    def __init__(self, loop: asyncio.AbstractEventLoop, layer, channel: str):
        self.loop, self.layer, self.channel = loop, layer, channel
        self.queues: dict[str, asyncio.Queue] = {}

    @classmethod
    async def open_on(cls, loop: asyncio.AbstractEventLoop) -> _Mailbox:
        layer = get_channel_layer()
        # Keep the default "specific." prefix: channels-redis reads all of a
        # process's channels through the one that holds its receive lock, and
        # only finds those that share that prefix.
        mailbox = cls(loop, layer, await layer.new_channel())
        mailbox.reader = loop.create_task(mailbox._read())
        return mailbox

    def open(self, request_id: str) -> asyncio.Queue:
        self.queues[request_id] = asyncio.Queue()
        return self.queues[request_id]

    def close(self, request_id: str) -> None:
        self.queues.pop(request_id, None)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except Exception:  # noqa: BLE001 - keep the mailbox alive across Redis hiccups
                logger.exception("inference mailbox receive failed")
                await asyncio.sleep(1)
                continue
            queue = self.queues.get(message.get("request_id"))
            if queue is not None:  # replies for stopped requests are dropped
                queue.put_nowait(message)


class InferenceWorkerConsumer(AsyncConsumer):
    """Serves the ``inference`` channel in ``runworker`` processes.

    Each request runs as its own task on this process's LocalEngine, so many
    requests share one dynamic batch. Cancel messages arrive on this
    consumer's private channel, named in every reply it sends.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tasks: dict[str, asyncio.Task] = {}

    async def inference_request(self, message: dict) -> None:
        request_id = message["request"]["request_id"]
        self.tasks[request_id] = asyncio.create_task(self._serve(message))
        self.tasks[request_id].add_done_callback(lambda _: self.tasks.pop(request_id, None))

    async def inference_cancel(self, message: dict) -> None:
        task = self.tasks.get(message["request_id"])
        if task is not None:
            task.cancel()

    async def _serve(self, message: dict) -> None:
        reply_channel = message["reply_channel"]
        request_id = message["request"]["request_id"]
        try:
            request = _request_from_wire(message["request"])
        except (InvalidSampling, KeyError, TypeError) as error:
            event = Finished(FinishReason.ERROR, 0, None, 0.0, f"bad request: {error}")
            await self._reply(reply_channel, request_id, event)
            return
        try:
            async for event in local_engine().stream(request):
                await self._reply(reply_channel, request_id, event)
        except Exception as error:  # noqa: BLE001 - tell the web process, keep serving
            logger.exception("inference request %s failed", request_id)
            event = Finished(FinishReason.ERROR, 0, None, 0.0, f"inference worker error: {error}")
            await self._reply(reply_channel, request_id, event)

    async def _reply(self, reply_channel: str, request_id: str, event: GenerationEvent) -> None:
        await self.channel_layer.send(
            reply_channel,
            {**_event_to_wire(event), "request_id": request_id, "worker": self.channel_name},
        )
