"""Replies a web process left streaming when it died are failed as soon as another web
process starts (or within seconds, from another host), keeping their text; beat's
stale-reply task stays the backstop. The kill test runs real Uvicorn processes."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.utils import timezone

from chat import services
from chat.models import Message
from live import liveness
from tests.support.servers import app_env, asgi_server, asgi_server_process
from tests.support.ws import frames_until, open_chat, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

ORPHANED = services.ORPHANED_REPLY_ERROR


def streaming_reply(user, streamed_by: str, seconds_since_checkpoint: float = 0) -> Message:
    conversation = services.conversation_create(owner=user)
    question = services.user_message_create(conversation=conversation, content="Hi", parent=None)
    reply = services.reply_create(
        conversation=conversation, parent=question, streamed_by=streamed_by
    )
    services.reply_checkpoint(reply_id=reply.pk, content="Half a rep")
    checkpoint = timezone.now() - timedelta(seconds=seconds_since_checkpoint)
    Message.objects.filter(pk=reply.pk).update(updated_at=checkpoint)
    return reply


def test_it_leaves_the_replies_of_live_processes_alone(alice):
    """This process, and another host's process with a heartbeat or a recent checkpoint."""
    mine = streaming_reply(alice, liveness.process_identity(), seconds_since_checkpoint=300)
    beating = streaming_reply(alice, "elsewhere:41:9", seconds_since_checkpoint=300)
    cache.set("web-alive:elsewhere:41:9", "now", timeout=30)
    recent = streaming_reply(alice, "elsewhere:42:9", seconds_since_checkpoint=2)
    assert liveness.orphaned_replies_sweep() == 0
    for reply in (mine, beating, recent):
        reply.refresh_from_db()
        assert reply.status == Message.Status.STREAMING


def test_it_fails_the_replies_of_gone_processes_keeping_their_text(alice):
    """A dead pid on this host at once; another host's silent process by its missing heartbeat."""
    host = liveness.process_identity().split(":")[0]
    dead = streaming_reply(alice, f"{host}:{2**22 + 7}:12345")  # no such pid
    cache.delete("web-alive:elsewhere:43:9")
    silent = streaming_reply(alice, "elsewhere:43:9", seconds_since_checkpoint=300)
    assert liveness.orphaned_replies_sweep() == 2
    for reply in (dead, silent):
        reply.refresh_from_db()
        assert (reply.status, reply.content, reply.error) == ("failed", "Half a rep", ORPHANED)
    assert "is no longer running" in dead.error_detail
    assert "no heartbeat" in silent.error_detail


async def test_a_reply_of_a_killed_web_process_reads_failed_once_another_starts(
    alice, tiny_model_4k_dir, tmp_path
):
    """SIGKILL the web process mid-reply, start it again: within 10 s of the new one
    answering, the reply reads ``failed`` (not ``streaming``) with its checkpointed text,
    and the next message is answered."""
    env = app_env(tiny_model_4k_dir, CHAT_REPLY_CHECKPOINT_SECONDS="1")
    conversation = await sync_to_async(services.conversation_create)(owner=alice)
    await sync_to_async(services.conversation_update)(
        conversation=conversation, changes={"max_new_tokens": 3000}
    )
    cookie = await sync_to_async(session_cookie)(alice)
    with asgi_server_process(env, tmp_path / "killed.log") as (url, web):
        socket = await open_chat(url, cookie)
        send = {"type": "send", "conversation": conversation.pk, "content": "Hi", "parent": None}
        await socket.send(json.dumps(send))
        started = (await frames_until(socket, "reply_started"))[-1]["message"]
        streamed = []
        began = time.monotonic()
        while time.monotonic() - began < 2.5:  # past two checkpoints
            frame = (await frames_until(socket, "token"))[-1]
            streamed.append(frame["text"])
        web.send_signal(signal.SIGKILL)
        assert web.wait(timeout=10) == -signal.SIGKILL
    reply = await sync_to_async(Message.objects.get)(pk=started["id"])
    assert reply.status == Message.Status.STREAMING
    assert reply.streamed_by.split(":")[1] == str(web.pid)

    with asgi_server(env, tmp_path / "restarted.log") as url:
        answering = time.monotonic()
        while reply.status == Message.Status.STREAMING and time.monotonic() - answering < 10:
            await asyncio.sleep(0.2)
            await sync_to_async(reply.refresh_from_db)()
        waited = time.monotonic() - answering
        print(f"the orphaned reply read failed {waited:.2f} s after the new process answered")
        assert reply.status == Message.Status.FAILED and waited < 10
        assert reply.content and "".join(streamed).startswith(reply.content)
        assert reply.error == ORPHANED and f":{web.pid}:" in reply.error_detail

        await sync_to_async(services.conversation_update)(
            conversation=conversation, changes={"max_new_tokens": 8}
        )
        socket = await open_chat(url, cookie)
        await socket.send(json.dumps({"type": "regenerate", "message": reply.pk}))
        again = (await frames_until(socket, "reply_done"))[-1]["message"]
        await socket.close()
    assert again["status"] == "complete"
