"""The real embedded model, SmolLM2-135M-Instruct (slow: seconds per reply on CPU)."""

from __future__ import annotations

import asyncio

import pytest

from llm.engine.base import FinishReason
from llm.engine.local import LocalEngine
from tests.llm_tests.streams import ask, collect, finished, start_engine, started, tokens

pytestmark = pytest.mark.slow

PROMPTS = [
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "List three fruits.",
    "Explain in a few words what a computer program is, for a child who has never "
    "seen a computer before.",
]


@pytest.fixture(scope="module")
def smollm2_engine(smollm2_dir, model_cache_dir) -> LocalEngine:
    return start_engine(smollm2_dir, model_cache_dir)


def reply(events) -> str:
    return "".join(token.text for token in tokens(events))


async def test_it_knows_the_capital_of_france(smollm2_engine):
    """The greedy answer names Paris and the model ends its own turn."""
    events = await collect(smollm2_engine, ask(PROMPTS[0], 24))
    assert started(events).model_version == "SmolLM2-135M-Instruct"
    assert "Paris" in reply(events)
    assert finished(events).finish_reason is FinishReason.STOP  # it ends its own turn


async def test_it_gives_the_same_greedy_replies_batched_as_alone(smollm2_engine):
    """Four different prompts decoded together give exactly their solo greedy texts."""
    alone = [reply(await collect(smollm2_engine, ask(prompt, 24))) for prompt in PROMPTS]
    together = await asyncio.gather(
        *(collect(smollm2_engine, ask(prompt, 24)) for prompt in PROMPTS)
    )
    assert [reply(events) for events in together] == alone
    assert all(len(text) > 10 for text in alone)
