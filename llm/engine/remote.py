"""The split mode: web processes reach inference workers over a channel layer.

:class:`RemoteEngine` sends each request to the workers' channel;
:func:`serve_request` is the worker's side, running it on the worker's own
engine. The layer is anything with Channels' ``send`` / ``receive`` /
``new_channel`` (channels-redis in the app), handed in so this module needs
no web stack.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from llm.engine.base import (
    Engine,
    EngineState,
    Finished,
    FinishReason,
    GenerationEvent,
    GenerationRequest,
)
from llm.engine.wire import event_from_wire, event_to_wire, request_from_wire, request_to_wire
from llm.sampling import InvalidSampling

logger = logging.getLogger(__name__)


class ChannelLayer(Protocol):
    async def send(self, channel: str, message: dict) -> None: ...
    async def receive(self, channel: str) -> dict: ...
    async def new_channel(self) -> str: ...


class RemoteEngine(Engine):
    """Runs requests on inference workers reached over the channel layer.

    Replies for every request of this process arrive on one mailbox channel,
    read by one long-lived task and handed out by request id. Channel-layer
    receives are never cancelled (channels-redis does not survive that), so a
    stopped request just stops listening and tells its worker to cancel.
    """

    def __init__(
        self, layer: Callable[[], ChannelLayer], channel: str, start_timeout: float = 120.0
    ):
        self.layer, self.channel, self.start_timeout = layer, channel, start_timeout
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
                "request": request_to_wire(request),
            },
        )
        worker, finished = None, False
        try:
            while not finished:
                try:
                    message = await asyncio.wait_for(events.get(), self.start_timeout)
                except TimeoutError:
                    finished = True
                    yield Finished(
                        FinishReason.ERROR,
                        0,
                        None,
                        self.start_timeout,
                        "no inference worker answered",
                    )
                    return
                worker = message.get("worker", worker)
                event = event_from_wire(message)
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
            self._mailbox = await _Mailbox.open_on(loop, self.layer())
        return self._mailbox


class _Mailbox:
    """One reply channel per process and event loop, demultiplexed by request id."""

    def __init__(self, loop: asyncio.AbstractEventLoop, layer: ChannelLayer, channel: str):
        self.loop, self.layer, self.channel = loop, layer, channel
        self.queues: dict[str, asyncio.Queue] = {}

    @classmethod
    async def open_on(cls, loop: asyncio.AbstractEventLoop, layer: ChannelLayer) -> _Mailbox:
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


Reply = Callable[[dict[str, Any]], Awaitable[None]]


async def serve_request(engine: Engine, message: dict, reply: Reply) -> None:
    """The worker's side of one ``inference.request``: run it, send back each event.

    A malformed request or an engine error ends in one ``Finished`` error
    event, so the web process never waits for its timeout.
    """
    request_id = message["request"]["request_id"]
    try:
        request = request_from_wire(message["request"])
    except (InvalidSampling, KeyError, TypeError) as error:
        await reply(_finished_error(request_id, f"bad request: {error}"))
        return
    try:
        async for event in engine.stream(request):
            await reply({**event_to_wire(event), "request_id": request_id})
    except Exception as error:  # noqa: BLE001 - tell the web process, keep serving
        logger.exception("inference request %s failed", request_id)
        await reply(_finished_error(request_id, f"inference worker error: {error}"))


def _finished_error(request_id: str, error: str) -> dict:
    event = Finished(FinishReason.ERROR, 0, None, 0.0, error)
    return {**event_to_wire(event), "request_id": request_id}
