"""The chat websocket: parse a frame, call one service, answer (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import transaction

from chat import selectors, services
from chat.models import Conversation, Message
from chat.refusals import Refusal
from chat.serializers import conversation_data, message_data
from feedback import services as feedback_services
from feedback.selectors import rating_data, written_pair_data
from feedback.written import written_reply_submit
from live import frames
from live.pooled import in_pool
from live.ratelimit import generation_check
from live.replies import ClientGone, reply_stream
from llm.engine.base import Engine, EngineError, EngineState
from training import arena
from training.models import ArenaMatch, ModelVersion
from training.services import serving_of

logger = logging.getLogger(__name__)


class ChatConsumer(AsyncWebsocketConsumer):
    """One socket per browser tab; ``engine`` writes its replies (live.routing).

    It reads no channel layer: nothing is sent to it from other processes, so a
    Redis restart cannot close it (Channels ends a consumer whose layer read fails).
    Redis is only asked when a message is sent (rate limits, live.ratelimit).
    """

    running: asyncio.Task | None = None
    channel_layer_alias = None  # no Redis read held open per socket

    def __init__(self, *args, engine: Engine, **kwargs):
        super().__init__(*args, **kwargs)
        self.engine = engine

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            refusal = Refusal("unauthenticated", "Log in first.")
            await self.send_json(frames.error_frame(refusal, None))
            await self.close(code=4401)
            return
        await self.send_engine_state(self.engine.state)
        if self.engine.state is EngineState.LOADING:
            self.watcher = asyncio.create_task(self._announce_when_ready())

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A server shutting down (SIGTERM) cancels its consumers without a
            # disconnect: the reply being written is saved as stopped all the same.
            await self._stop_reply()

    async def disconnect(self, code: int) -> None:
        # A closed browser stops its reply; the partial text is saved as stopped.
        await self._stop_reply()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The one translation of refusals for the websocket: any stage after the
        # frame decoded (its type included) answers with the frame's nonce.
        nonce = None
        try:
            frame = frames.decode(text_data, bytes_data)
            nonce = frames.nonce_of(frame)
            handler = getattr(self, f"on_{frames.frame_type(frame)}")
            await handler(frame, nonce)
        except Refusal as refusal:
            await self.send_json(frames.error_frame(refusal, nonce))

    # -- frame handlers ---------------------------------------------------------

    async def on_send(self, frame: dict, nonce: str | None) -> None:
        parsed = frames.send_frame(frame)
        self._check_idle()
        conversation = await self._conversation(parsed.conversation_id)
        parent = None
        if parsed.parent_id is not None:
            parent = await self._message(parsed.parent_id, conversation, Message.Role.ASSISTANT)
        await self._check_can_generate()
        user_message = await database_sync_to_async(services.user_message_create)(
            conversation=conversation, content=parsed.content, parent=parent
        )
        await self.send_json(
            {"type": "message", "message": message_data(user_message), **frames.nonce_field(nonce)}
        )
        await self.send_json(
            {"type": "conversation", "conversation": conversation_data(conversation)}
        )
        self._start_reply(conversation, user_message, nonce)

    async def on_regenerate(self, frame: dict, nonce: str | None) -> None:
        message_id = frames.required_id(frame, "message")
        self._check_idle()
        message = await self._message(message_id)
        user_message = message if message.role == Message.Role.USER else message.parent
        await self._check_can_generate()
        self._start_reply(message.conversation, user_message, nonce)

    async def on_stop(self, frame: dict, nonce: str | None) -> None:
        if self.running is None or self.running.done():
            raise Refusal("not_running", "No reply is being written.")
        self.running.cancel()

    async def on_rate(self, frame: dict, nonce: str | None) -> None:
        rating = await self._feedback(
            feedback_services.rating_submit,
            user=self.user,
            message_id=frame.get("message"),
            value=frame.get("value"),
            reasons=frame.get("reasons"),
            comment=frame.get("comment"),
        )
        await self.send_json(
            {
                "type": "rating",
                "message": frame["message"],
                "rating": rating_data(rating),
                **frames.nonce_field(nonce),
            }
        )

    async def on_prefer(self, frame: dict, nonce: str | None) -> None:
        pairs = await self._feedback(
            feedback_services.preference_submit, user=self.user, chosen_id=frame.get("message")
        )
        await self.send_json(
            {
                "type": "preference",
                "message": frame["message"],
                "rejected": [pair.rejected_id for pair in pairs],
                **frames.nonce_field(nonce),
            }
        )

    async def on_write_reply(self, frame: dict, nonce: str | None) -> None:
        written = await self._feedback(
            written_reply_submit,
            user=self.user,
            message_id=frame.get("message"),
            content=frame.get("content"),
        )
        await self.send_json(
            {
                "type": "written_reply",
                "message": frame["message"],
                "reply": message_data(written.reply),
                "pair": written_pair_data(written.pair),
                **frames.nonce_field(nonce),
            }
        )

    async def on_arena(self, frame: dict, nonce: str | None) -> None:
        """Two anonymous versions answer one new message side by side (docs/protocol.md)."""
        content = frames.arena_content(frame)
        chosen = frames.arena_versions(frame)
        self._check_idle()
        await self._check_can_generate()
        setup = await database_sync_to_async(_arena_setup)(
            user=self.user, content=content, chosen=chosen
        )
        user_message, match = setup.user_message, setup.match
        await self.send_json(
            {"type": "message", "message": message_data(user_message), **frames.nonce_field(nonce)}
        )
        await self.send_json(
            {"type": "conversation", "conversation": conversation_data(setup.conversation)}
        )
        await self.send_json(
            {"type": "arena_match", "match": arena.match_data(match, reveal=False)}
        )
        self.running = asyncio.create_task(self._arena_replies(setup, nonce))

    async def on_arena_vote(self, frame: dict, nonce: str | None) -> None:
        match = await self._feedback(
            arena.arena_vote,
            user=self.user,
            match_id=frame.get("match"),
            winner=frame.get("winner"),
        )
        await self.send_json(
            {
                "type": "arena_voted",
                "match": arena.match_data(match, reveal=True),
                "pair": match.pair_id,
                **frames.nonce_field(nonce),
            }
        )

    async def on_ping(self, frame: dict, nonce: str | None) -> None:
        await self.send_json({"type": "pong", **frames.nonce_field(nonce)})

    # -- helpers ----------------------------------------------------------------

    async def _arena_replies(self, setup: ArenaSetup, nonce: str | None) -> None:
        """Both sides at once; stop (or a closed socket) stops both, each saved as stopped."""

        async def anonymous(frame: dict) -> None:
            if "message" in frame and isinstance(frame["message"], dict):
                frame = {**frame, "message": {**frame["message"], "model_version": ""}}
            await self._send_reply_frame(frame)

        await asyncio.gather(
            *(
                reply_stream(
                    engine=self.engine,
                    conversation=setup.conversation,
                    user_message=setup.user_message,
                    send=anonymous,
                    nonce=nonce,
                    serving=serving_of(version),
                    reply=reply,
                )
                for reply, version in setup.sides
            )
        )

    def _start_reply(self, conversation: Conversation, user_message: Message, nonce: str | None):
        self.running = asyncio.create_task(
            reply_stream(
                engine=self.engine,
                conversation=conversation,
                user_message=user_message,
                send=self._send_reply_frame,
                nonce=nonce,
            )
        )

    async def _send_reply_frame(self, frame: dict) -> None:
        try:
            await self.send_json(frame)
        except OSError as error:  # Uvicorn raises ClientDisconnected once the socket closed
            raise ClientGone from error

    async def _stop_reply(self) -> None:
        if self.running is not None and not self.running.done():
            self.running.cancel()
            await asyncio.gather(self.running, return_exceptions=True)

    def _check_idle(self) -> None:
        if self.running is not None and not self.running.done():
            raise Refusal("busy", "A reply is already being written; stop it or wait.")

    async def _check_can_generate(self) -> None:
        if self.engine.state is EngineState.FAILED:
            raise Refusal("engine_unavailable", "The model could not be loaded.")
        retry_after = await generation_check(user_id=self.user.pk)
        if retry_after is not None:
            raise Refusal(
                "rate_limited",
                f"Too many messages; try again in {retry_after:.0f} s.",
                retry_after=retry_after,
            )

    async def _feedback(self, service, **arguments):
        # Short, independent writes: run them on the shared pool (each thread keeps
        # its own connection) instead of queueing behind the one sync thread.
        return await in_pool(service)(**arguments)

    @database_sync_to_async
    def _conversation(self, conversation_id: int) -> Conversation:
        try:
            return selectors.conversation_get(owner=self.user, conversation_id=conversation_id)
        except Conversation.DoesNotExist:
            raise Refusal(
                "not_found", "No such conversation (or it is not yours).", "conversation"
            ) from None

    @database_sync_to_async
    def _message(
        self, message_id: int, conversation: Conversation | None = None, role: str | None = None
    ) -> Message:
        try:
            message = selectors.message_get(owner=self.user, message_id=message_id)
        except Message.DoesNotExist:
            message = None
        if message is None or not _fits(message, conversation, role):
            field = "parent" if conversation is not None else "message"
            raise Refusal("not_found", "No such message (or it is not yours).", field)
        return message

    async def _announce_when_ready(self) -> None:
        try:
            await self.engine.wait_ready()
        except EngineError as error:
            # The cause names files and exceptions: the log has it, the user reads words.
            logger.error("the chat model is unavailable: %s", error)
            await self.send_engine_state(
                EngineState.FAILED,
                "The model could not be loaded. The server's log says why; ask its operator.",
            )
            return
        await self.send_engine_state(EngineState.READY)

    async def send_engine_state(self, state: EngineState, detail: str = "") -> None:
        await self.send_json({"type": "engine", "state": str(state), "detail": detail})

    async def send_json(self, frame: dict) -> None:
        await self.send(text_data=json.dumps(frame))


@dataclass(frozen=True)
class ArenaSetup:
    conversation: Conversation
    user_message: Message
    match: ArenaMatch

    @property
    def sides(self) -> list[tuple[Message, ModelVersion]]:
        return [
            (self.match.reply_a, self.match.version_a),
            (self.match.reply_b, self.match.version_b),
        ]


def _arena_setup(*, user, content: str, chosen: tuple[int, int] | None) -> ArenaSetup:
    """Check the user may, pick the two versions (or take staff's ``chosen``), save the
    message and both empty replies."""
    if not arena.arena_allowed(user=user):
        raise Refusal("forbidden", "The arena is open to staff and to users who opt in.")
    if chosen is None:
        versions = arena.arena_versions()
    else:
        versions = arena.arena_versions_chosen(user=user, version_ids=chosen)
    with transaction.atomic():
        conversation = services.conversation_create(owner=user)
        user_message = services.user_message_create(
            conversation=conversation, content=content, parent=None
        )
        replies = tuple(
            services.reply_create(conversation=conversation, parent=user_message) for _ in versions
        )
        match = arena.arena_match_create(
            user=user, prompt_message=user_message, replies=replies, versions=versions
        )
    return ArenaSetup(conversation, user_message, match)


def _fits(message: Message, conversation: Conversation | None, role: str | None) -> bool:
    in_place = conversation is None or message.conversation_id == conversation.pk
    return in_place and (role is None or message.role == role)
