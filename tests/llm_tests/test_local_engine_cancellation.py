"""LocalEngine cancellation: closing a stream takes its row out of the batch."""

from __future__ import annotations

import asyncio
import threading

import pytest

from llm.engine.base import FinishReason, Token
from llm.engine.batch import DecodeBatch
from llm.prompting import encode_chat
from tests.llm_tests.streams import (
    ask,
    assert_same_logits,
    collect,
    finished,
    stacked_logits,
    token_ids,
)


class BatchSpy:
    """Records the batch size of every decode step and the prompt of every prefill."""

    def __init__(self, monkeypatch):
        self.step_sizes: list[int] = []
        self.prefills: list[list[int]] = []
        step, prefill = DecodeBatch.step, DecodeBatch.prefill

        def spied_step(batch):
            self.step_sizes.append(batch.size)
            return step(batch)

        def spied_prefill(batch, prompt_ids, adapter):
            self.prefills.append(list(prompt_ids))
            return prefill(batch, prompt_ids, adapter)

        monkeypatch.setattr(DecodeBatch, "step", spied_step)
        monkeypatch.setattr(DecodeBatch, "prefill", spied_prefill)


@pytest.fixture
def spy(monkeypatch) -> BatchSpy:
    return BatchSpy(monkeypatch)


async def first_tokens(stream, count: int) -> None:
    received = 0
    async for event in stream:
        received += isinstance(event, Token)
        if received == count:
            return


async def assert_still_serving(engine) -> None:
    events = await asyncio.wait_for(collect(engine, ask("Are you there?", 5)), 30)
    assert finished(events).finish_reason is FinishReason.LENGTH


async def test_it_drops_a_closed_stream_from_the_batch(tiny_engine, spy):
    """aclose() mid-reply: the row leaves before the next step; the other row is untouched."""
    other = ask("Describe the weather today in detail.", 60, return_logits=True)
    solo = await collect(tiny_engine, other)

    running = asyncio.create_task(collect(tiny_engine, other))
    stream = tiny_engine.stream(ask("Tell me a very long story.", 400))
    await first_tokens(stream, 5)
    await stream.aclose()
    closed_at = len(spy.step_sizes)
    assert not running.done()
    together = await asyncio.wait_for(running, 30)

    assert max(spy.step_sizes) == 2  # they did share the batch
    assert set(spy.step_sizes[closed_at + 1 :]) == {1}  # at most one step in flight
    assert token_ids(together) == token_ids(solo)
    assert_same_logits(stacked_logits(together), stacked_logits(solo))
    await assert_still_serving(tiny_engine)


async def test_it_drops_the_row_of_a_cancelled_task(tiny_engine, spy):
    """Cancelling the task that iterates a stream cancels the request."""
    stream_started = asyncio.Event()

    async def consume() -> None:
        async for event in tiny_engine.stream(ask("Tell me a very long story.", 400)):
            if isinstance(event, Token):
                stream_started.set()

    running = asyncio.create_task(collect(tiny_engine, ask("Short answer please.", 80)))
    task = asyncio.create_task(consume())
    await asyncio.wait_for(stream_started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled_at = len(spy.step_sizes)
    assert not running.done()
    events = await asyncio.wait_for(running, 30)

    assert finished(events).completion_tokens == 80
    assert set(spy.step_sizes[cancelled_at + 1 :]) == {1}
    await assert_still_serving(tiny_engine)


async def test_it_drops_the_row_when_the_caller_breaks_out_of_the_loop(tiny_engine, spy):
    """Leaving ``async for`` early closes the stream once it is garbage, which cancels."""
    running = asyncio.create_task(collect(tiny_engine, ask("Short answer please.", 80)))
    received = 0
    async for event in tiny_engine.stream(ask("Tell me a very long story.", 400)):
        received += isinstance(event, Token)
        if received == 3:
            break
    await asyncio.sleep(0.05)  # the loop's async-generator finaliser runs aclose()
    broke_at = len(spy.step_sizes)
    assert not running.done()
    await asyncio.wait_for(running, 30)

    assert set(spy.step_sizes[broke_at + 1 :]) == {1}
    await assert_still_serving(tiny_engine)


async def test_it_never_starts_a_request_cancelled_while_queued(tiny_engine, spy):
    """A request cancelled before the engine reached it is never prefilled."""
    gate = threading.Event()
    busy = tiny_engine.call(lambda loaded: gate.wait(timeout=10))  # hold the engine thread
    queued = asyncio.create_task(collect(tiny_engine, ask("I will be cancelled.", 50)))
    await asyncio.sleep(0.1)  # the request is now in the engine's inbox
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    gate.set()
    assert busy.result(timeout=10) is True

    events = await asyncio.wait_for(collect(tiny_engine, ask("I will run.", 3)), 30)
    assert finished(events).completion_tokens == 3
    tokenizer = tiny_engine.loaded.tokenizer
    assert spy.prefills == [encode_chat(tokenizer, [{"role": "user", "content": "I will run."}])]
