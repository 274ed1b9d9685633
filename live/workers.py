"""The inference worker: ``python manage.py runworker inference`` (split mode)."""

from __future__ import annotations

import asyncio

from channels.consumer import AsyncConsumer

from llm.engine.base import Engine
from llm.engine.remote import serve_request


class InferenceWorkerConsumer(AsyncConsumer):
    """Serves the ``inference`` channel with this process's engine.

    Each request runs as its own task, so many requests share one dynamic
    batch. Cancel messages arrive on this consumer's private channel, named
    in every reply it sends.
    """

    def __init__(self, *args, engine: Engine, **kwargs):
        super().__init__(*args, **kwargs)
        self.engine = engine
        self.tasks: dict[str, asyncio.Task] = {}

    async def inference_request(self, message: dict) -> None:
        request_id = message["request"]["request_id"]
        self.tasks[request_id] = asyncio.create_task(
            serve_request(self.engine, message, lambda event: self._reply(message, event))
        )
        self.tasks[request_id].add_done_callback(lambda _: self.tasks.pop(request_id, None))

    async def inference_cancel(self, message: dict) -> None:
        task = self.tasks.get(message["request_id"])
        if task is not None:
            task.cancel()

    async def _reply(self, message: dict, event: dict) -> None:
        await self.channel_layer.send(
            message["reply_channel"], {**event, "worker": self.channel_name}
        )
