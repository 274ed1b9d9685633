"""LlamaCppEngine batching: conversations decoded together, each as if alone (within
llama.cpp's rounding); rows join, leave and are cancelled between steps; the KV cache
is never overcommitted."""

from __future__ import annotations

import asyncio
import threading

import llama_cpp
import pytest

from llm.engine.base import Finished, FinishReason, GenerationRequest, Started, Token
from llm.engine.llamacpp_batch import LlamaBatch
from llm.sampling import SamplingParams
from tests.llm_tests.llamacpp_support import assert_served_as_alone, start_llamacpp_engine
from tests.llm_tests.streams import (
    ask,
    collect,
    finished,
    token_ids,
)
from tests.llm_tests.test_local_engine_batching import PROMPTS, Recorder

pytestmark = pytest.mark.slow  # the real model's GGUF, one thread


def request(name: str, max_new_tokens: int, seed: int | None = None) -> GenerationRequest:
    sampling = (
        SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
        if seed is not None
        else SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    )
    return GenerationRequest(
        [{"role": "user", "content": PROMPTS[name]}], sampling, return_logits=True
    )


@pytest.fixture(scope="module")
def llama_engine(smollm2_dir, model_cache_dir):
    # Every reply starts cold, as its solo run did: on the Q4_1 file a prompt begun from
    # kept cells moves by rounding (test_llamacpp_engine_prompts.py covers those, on F16).
    engine = start_llamacpp_engine(model_cache_dir, kept_conversations=0)
    yield engine
    engine.close()


class StepSpy:
    """Records the rows of every decode step."""

    def __init__(self, monkeypatch):
        self.sizes: list[int] = []
        step = LlamaBatch.step

        def spied(batch):
            self.sizes.append(batch.size)
            return step(batch)

        monkeypatch.setattr(LlamaBatch, "step", spied)


async def test_it_gives_a_request_the_same_logits_in_a_busy_batch(llama_engine):
    """A's logits and tokens match its solo run while rows join before and during it,
    one row finishes early and another is cancelled mid-reply."""
    plan = {
        "a": request("a", 16),
        "b": request("b", 20, seed=1),
        "c": request("c", 8, seed=2),
        "d": request("d", 4),
        "e": request("e", 24),
    }
    solo = {name: await collect(llama_engine, item) for name, item in plan.items() if name != "e"}

    recorder = Recorder(llama_engine)
    recorder.start("b", plan["b"])
    await recorder.tokens_seen("b", 3)
    recorder.start("a", plan["a"])
    await recorder.tokens_seen("a", 3)
    recorder.start("c", plan["c"])
    recorder.start("d", plan["d"])
    recorder.start("e", plan["e"], stop_after=6)
    await recorder.wait()

    assert recorder.position("a", Started) < recorder.position("b", Finished)
    assert recorder.position("c", Started) < recorder.position("a", Finished)
    assert recorder.position("d", Finished) < recorder.position("a", Finished)
    for name in ("a", "b", "c", "d"):
        together = recorder.events[name]
        assert finished(together).finish_reason is FinishReason.LENGTH, name
        # c, d and e arrive together: their prompts share one decode call
        assert_served_as_alone(together, solo[name], prompt_alone=name in "ab")
    assert len(token_ids(recorder.events["e"])) == 6


async def test_it_decodes_concurrent_conversations_in_one_step(llama_engine, monkeypatch):
    """Eight requests started together share decode steps (one call for all eight) and
    each is served as alone."""
    spy = StepSpy(monkeypatch)
    item = request("d", 6)
    solo = await collect(llama_engine, item)
    together = await asyncio.gather(*(collect(llama_engine, item) for _ in range(8)))
    assert max(spy.sizes) == 8
    for events in together:
        assert_served_as_alone(events, solo, prompt_alone=False)  # eight prompts, one call


@pytest.fixture
def two_row_engine(smollm2_dir, model_cache_dir):
    engine = start_llamacpp_engine(model_cache_dir, max_batch_size=2, kept_conversations=0)
    engine.versions.stop_ids = set()  # replies run to their limit
    yield engine
    engine.close()


@pytest.fixture
def one_reply_cache_engine(smollm2_dir, model_cache_dir):
    """Room in its cache for one 256-token conversation at a time."""
    engine = start_llamacpp_engine(
        model_cache_dir, window=256, context_cells=256, kept_conversations=0
    )
    engine.versions.stop_ids = set()  # replies run to their limit
    yield engine
    engine.close()


async def test_it_never_decodes_more_rows_than_allowed(two_row_engine, monkeypatch):
    """With max_batch_size 2, four requests share the engine two at a time and all finish."""
    spy = StepSpy(monkeypatch)
    plan = [request(name, 6 + 3 * index) for index, name in enumerate("abcd")]
    results = await asyncio.gather(*(collect(two_row_engine, item) for item in plan))
    assert max(spy.sizes) == 2
    assert [finished(events).completion_tokens for events in results] == [6, 9, 12, 15]


async def test_it_waits_for_room_in_the_kv_cache(one_reply_cache_engine):
    """A reply joins only when the cache holds its prompt and its whole reply beside the
    others': with room for one at a time, the second waits for the first to end."""
    engine = one_reply_cache_engine
    first = GenerationRequest(
        [{"role": "user", "content": "Count slowly."}],
        SamplingParams(temperature=0.0, max_new_tokens=200),  # ~235 of 256 cells
    )
    recorder = Recorder(engine)
    recorder.start("first", first)
    await recorder.tokens_seen("first", 2)
    recorder.start("second", ask("Hello", 30))  # ~65 more cells
    await asyncio.sleep(0.3)
    assert engine.waiting == 1 and engine.batch_size == 1
    await recorder.wait()
    assert recorder.position("second", Started) > recorder.position("first", Finished)
    assert finished(recorder.events["first"]).completion_tokens == 200
    assert finished(recorder.events["second"]).completion_tokens == 30


async def test_it_frees_the_sequence_of_a_closed_stream(llama_engine):
    """aclose() mid-reply: the row leaves before the next step, its tokens leave the KV
    cache, and the other row is untouched."""
    other = request("a", 24)
    solo = await collect(llama_engine, other)
    running = asyncio.create_task(collect(llama_engine, other))
    stream = llama_engine.stream(ask("Tell me a very long story.", 200))
    received = 0
    async for event in stream:
        received += isinstance(event, Token)
        if received == 5:
            break
    await stream.aclose()
    together = await asyncio.wait_for(running, 60)

    assert_served_as_alone(together, solo, prompt_alone=False)  # both prompts in one call
    context = llama_engine.versions.context(None)
    memory = llama_cpp.llama_get_memory(context.pointer)
    used = [llama_cpp.llama_memory_seq_pos_max(memory, seq) for seq in range(16)]
    assert used == [-1] * 16  # every sequence was removed once its reply ended


async def test_it_never_starts_a_request_cancelled_while_queued(llama_engine, monkeypatch):
    """A request cancelled before the engine reached it is never decoded."""
    prefills: list[int] = []
    prefill = LlamaBatch.prefill

    def spied(batch, prompt_ids, adapter):
        prefills.append(len(prompt_ids))
        return prefill(batch, prompt_ids, adapter)

    monkeypatch.setattr(LlamaBatch, "prefill", spied)
    gate = threading.Event()
    busy = llama_engine.call(lambda loaded: gate.wait(timeout=10))
    queued = asyncio.create_task(collect(llama_engine, ask("I will be cancelled.", 50)))
    await asyncio.sleep(0.1)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    gate.set()
    assert busy.result(timeout=10) is True
    events = await asyncio.wait_for(collect(llama_engine, ask("I will run.", 3)), 30)
    assert finished(events).completion_tokens == 3
    assert len(prefills) == 1
