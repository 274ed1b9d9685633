"""LocalEngine batching: a request's logits do not depend on who shares its batch."""

from __future__ import annotations

import asyncio

import pytest

from llm.engine.base import Finished, FinishReason, GenerationRequest, Started, Token
from llm.engine.batch import DecodeBatch
from llm.engine.local import LocalEngine
from llm.sampling import SamplingParams
from tests.llm_tests.streams import (
    assert_same_logits,
    collect,
    finished,
    stacked_logits,
    start_engine,
    token_ids,
)

# Prompts of clearly different lengths, so joins and leaves re-pad and trim the cache.
PROMPTS = {
    "a": "What is the capital of France?",
    "b": "Write a long essay about rivers, mountains, forests and the sea. " * 6,
    "c": "Hi",
    "d": "Count to three, please, slowly and carefully.",
    "e": "Tell me everything you know about the history of clocks " * 3,
}


def request(name: str, max_new_tokens: int, seed: int | None = None) -> GenerationRequest:
    """Greedy without a seed; seeded sampling (varied tokens fed back) with one."""
    sampling = (
        SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=seed)
        if seed is not None
        else SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    )
    return GenerationRequest(
        [{"role": "user", "content": PROMPTS[name]}], sampling, return_logits=True
    )


class Recorder:
    """Consumes several streams at once, keeping each one's events and a shared order."""

    def __init__(self, engine):
        self.engine = engine
        self.events: dict[str, list] = {}
        self.order: list[tuple[str, str]] = []
        self.tasks: list[asyncio.Task] = []

    def start(self, name: str, request: GenerationRequest, stop_after: int | None = None):
        self.events[name] = []
        self.tasks.append(asyncio.create_task(self._consume(name, request, stop_after)))

    async def _consume(self, name, request, stop_after):
        stream = self.engine.stream(request)
        async for event in stream:
            self.events[name].append(event)
            self.order.append((name, type(event).__name__))
            received = sum(isinstance(item, Token) for item in self.events[name])
            if stop_after is not None and received == stop_after:
                await stream.aclose()  # the caller walks away mid-reply
                return

    async def tokens_seen(self, name: str, count: int) -> None:
        while sum(isinstance(item, Token) for item in self.events[name]) < count:
            await asyncio.sleep(0.005)

    async def wait(self) -> None:
        await asyncio.wait_for(asyncio.gather(*self.tasks), 120)

    def position(self, name: str, kind: type) -> int:
        return self.order.index((name, kind.__name__))


async def test_it_gives_a_request_the_same_logits_in_a_busy_batch(tiny_engine):
    """A's logits and tokens match its solo run while rows join before and during it,
    one row finishes early and another is cancelled mid-reply."""
    plan = {
        "a": request("a", 32),
        "b": request("b", 64, seed=1),
        "c": request("c", 16, seed=2),
        "d": request("d", 4),
        "e": request("e", 100),
    }
    solo = {name: await collect(tiny_engine, item) for name, item in plan.items() if name != "e"}

    recorder = Recorder(tiny_engine)
    recorder.start("b", plan["b"])
    await recorder.tokens_seen("b", 3)
    recorder.start("a", plan["a"])
    await recorder.tokens_seen("a", 3)
    recorder.start("c", plan["c"])  # joins while A is mid-generation
    recorder.start("d", plan["d"])  # finishes after 4 tokens: leaves while A runs
    recorder.start("e", plan["e"], stop_after=6)  # cancelled while A runs
    await recorder.wait()

    # The timeline really overlapped as planned.
    assert recorder.position("a", Started) < recorder.position("b", Finished)
    assert recorder.position("c", Started) < recorder.position("a", Finished)
    assert recorder.position("d", Finished) < recorder.position("a", Finished)
    assert recorder.order.index(("e", "Token")) < recorder.position("a", Finished)

    for name in ("a", "b", "c", "d"):
        together = recorder.events[name]
        assert finished(together).finish_reason is FinishReason.LENGTH, name
        assert token_ids(together) == token_ids(solo[name]), name
        assert_same_logits(stacked_logits(together), stacked_logits(solo[name]))
    assert len(token_ids(recorder.events["e"])) == 6


async def test_it_serves_many_identical_requests_identically(tiny_engine):
    """Eight copies of one seeded request started together all get the solo tokens."""
    item = request("d", 12, seed=9)
    solo = await collect(tiny_engine, item)
    together = await asyncio.gather(*(collect(tiny_engine, item) for _ in range(8)))
    for events in together:
        assert token_ids(events) == token_ids(solo)
        assert_same_logits(stacked_logits(events), stacked_logits(solo))


@pytest.fixture(scope="module")
def two_row_engine(tiny_model_dir, model_cache_dir) -> LocalEngine:
    return start_engine(tiny_model_dir, model_cache_dir, max_batch_size=2)


async def test_it_never_decodes_more_rows_than_allowed(two_row_engine, monkeypatch):
    """With max_batch_size 2, four requests share the engine two at a time and all finish."""
    engine = two_row_engine
    sizes: list[int] = []
    step = DecodeBatch.step

    def spied_step(batch):
        sizes.append(batch.size)
        return step(batch)

    monkeypatch.setattr(DecodeBatch, "step", spied_step)
    plan = [request(name, 10 + 5 * index) for index, name in enumerate("abcd")]
    results = await asyncio.gather(*(collect(engine, item) for item in plan))

    assert max(sizes) == 2
    assert [finished(events).completion_tokens for events in results] == [10, 15, 20, 25]
