"""Small helpers for starting an engine and reading its event streams in tests."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import torch

from llm.engine.base import Engine, Finished, GenerationEvent, GenerationRequest, Started, Token
from llm.engine.batch import DecodeBatch
from llm.engine.local import LocalEngine
from llm.loading import load_model
from llm.sampling import SamplingParams


def start_engine(model_dir: Path, cache_dir: Path, **options) -> LocalEngine:
    """A running engine on ``model_dir``, ready to serve."""
    engine = LocalEngine(lambda: load_model(str(model_dir), cache_dir, device="cpu"), **options)
    asyncio.run(engine.wait_ready())
    return engine


def greedy(max_new_tokens: int) -> SamplingParams:
    return SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)


def ask(text: str, max_new_tokens: int = 16, **options) -> GenerationRequest:
    """A one-message greedy request."""
    return GenerationRequest(
        messages=[{"role": "user", "content": text}], sampling=greedy(max_new_tokens), **options
    )


async def collect(engine: Engine, request: GenerationRequest) -> list[GenerationEvent]:
    return [event async for event in engine.stream(request)]


def started(events: list[GenerationEvent]) -> Started:
    assert isinstance(events[0], Started), events[0]
    return events[0]


def tokens(events: list[GenerationEvent]) -> list[Token]:
    return [event for event in events if isinstance(event, Token)]


def finished(events: list[GenerationEvent]) -> Finished:
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1]


def token_ids(events: list[GenerationEvent]) -> list[int]:
    return [token.token_id for token in tokens(events)]


def stacked_logits(events: list[GenerationEvent]) -> torch.Tensor:
    return torch.stack([token.logits for token in tokens(events)])


def assert_same_logits(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-4) -> None:
    assert actual.shape == expected.shape
    worst = (actual - expected).abs().max().item()
    assert torch.allclose(actual, expected, atol=atol), f"max logit difference {worst}"


class StepGate:
    """Holds the engine before each decode step until the test allows it."""

    def __init__(self, monkeypatch, batch_class: type = DecodeBatch):
        self.allowed = threading.Semaphore(0)
        self.taken = 0
        original = batch_class.step

        def gated_step(batch):
            self.allowed.acquire(timeout=10)  # never wedge the shared engine
            self.taken += 1
            return original(batch)

        monkeypatch.setattr(batch_class, "step", gated_step)

    def allow(self, steps: int) -> None:
        for _ in range(steps):
            self.allowed.release()
