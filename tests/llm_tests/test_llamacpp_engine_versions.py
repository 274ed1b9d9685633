"""LlamaCppEngine versions: trained LoRA adapters hot-loaded as GGUF LoRAs, a context
each, served next to the base model and freed least recently used first."""

from __future__ import annotations

import asyncio

import pytest
import torch

from llm.engine.base import FinishReason
from llm.engine.gguf_lora import gguf_lora_path
from llm.prompting import encode_chat
from tests.llm_tests.llamacpp_support import (
    BATCH_NOISE,
    assert_served_as_alone,
    bare_llama,
    reference_logits,
    start_llamacpp_engine,
)
from tests.llm_tests.streams import (
    ask,
    assert_same_logits,
    collect,
    finished,
    stacked_logits,
    started,
    token_ids,
)
from tests.llm_tests.test_gguf_lora import random_peft_adapter

pytestmark = [
    pytest.mark.slow,  # the real model's GGUF, one thread
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning"),
]


@pytest.fixture(scope="module")
def adapters(smollm2_dir, tmp_path_factory) -> dict[str, str]:
    """Two PEFT adapters of the real model with random weights, no GGUF file yet."""
    folder = tmp_path_factory.mktemp("versions")
    built = {}
    for name, std in (("v1", 0.03), ("v2", 0.05)):
        random_peft_adapter(smollm2_dir, folder / name, std=std)
        built[name] = str(folder / name)
    return built


@pytest.fixture(scope="module")
def versioned_engine(smollm2_dir, model_cache_dir):
    engine = start_llamacpp_engine(model_cache_dir, max_versions=2)
    yield engine
    engine.close()


def version_ask(name: str | None, adapters: dict[str, str], tokens: int = 8, text: str = "Hi"):
    return ask(
        text,
        tokens,
        return_logits=True,
        version=name,
        adapter_path=adapters[name] if name else None,
    )


async def test_it_loads_a_version_on_first_use_and_serves_its_adapter(versioned_engine, adapters):
    """A request naming v1 with its folder converts the adapter to a GGUF LoRA, loads
    it, is labelled v1 and gets bare llama.cpp's logits with that LoRA applied (within
    rounding) and not the base model's."""
    assert not gguf_lora_path(adapters["v1"]).exists()
    events = await collect(versioned_engine, version_ask("v1", adapters, text="Hello there"))
    assert started(events).model_version == "v1"
    assert finished(events).finish_reason is FinishReason.LENGTH, finished(events).error
    assert gguf_lora_path(adapters["v1"]).is_file()

    prompt = encode_chat(versioned_engine.loaded.tokenizer, started(events).prompt_messages)
    reference = bare_llama(versioned_engine.loaded.path, lora=gguf_lora_path(adapters["v1"]))
    expected = torch.from_numpy(reference_logits(reference, prompt, token_ids(events)))
    # The prompt goes in one pass both ways: the same logits. Later, one token a step
    # against all at once: the adapter's f32 matmuls round differently by shape.
    assert_same_logits(stacked_logits(events)[:1], expected[:1], atol=1e-3)
    assert (stacked_logits(events) - expected).abs().max() < BATCH_NOISE

    base = await collect(versioned_engine, version_ask(None, adapters, text="Hello there"))
    assert started(base).model_version == "SmolLM2-135M-Instruct"
    assert (stacked_logits(events)[0] - stacked_logits(base)[0]).abs().max() > 0.5


async def test_it_serves_the_base_and_two_versions_in_one_step(versioned_engine, adapters):
    """Base, v1 and v2 rows decode together, a context each, each served as alone."""
    plan = {
        name: version_ask(name, adapters, 12, f"Question for {name}?")
        for name in (None, "v1", "v2")
    }
    solo = {name: await collect(versioned_engine, item) for name, item in plan.items()}
    together = await asyncio.gather(*(collect(versioned_engine, item) for item in plan.values()))
    assert set(versioned_engine.versions.contexts) == {None, "v1", "v2"}
    for name, events in zip(plan, together, strict=True):
        assert started(events).model_version == started(solo[name]).model_version
        assert_served_as_alone(events, solo[name])


async def test_it_refuses_an_unknown_version(versioned_engine):
    """A version that is not loaded, and no folder to load it from: one Finished(error)."""
    events = await collect(versioned_engine, ask("Hi", 4, version="no-such-version"))
    assert len(events) == 1
    assert finished(events).finish_reason is FinishReason.ERROR
    assert "no-such-version" in finished(events).error


async def test_it_ends_rows_of_an_unloaded_version_and_frees_its_context(
    versioned_engine, adapters
):
    """Unloading a version mid-reply ends its rows with an error and frees its context
    and adapter; base rows go on; a later request loads it again."""
    engine = versioned_engine
    stream = engine.stream(version_ask("v2", adapters, 150, "Long story please"))
    # Its first tokens decoded alone, as in the solo run that is known to go on: beside
    # another row, logits drift enough (test_llamacpp_engine_batching) to end it early.
    events = [await anext(stream) for _ in range(4)]  # Started + 3 tokens
    base = asyncio.create_task(collect(engine, ask("Another long story", 40)))
    await asyncio.sleep(0.05)  # its request reaches the inbox before the unload does
    engine.call(lambda loaded: engine.versions.unload("v2")).result(timeout=30)
    events += [event async for event in stream]
    base_events = await asyncio.wait_for(base, 60)

    assert finished(events).finish_reason is FinishReason.ERROR
    assert "unloaded" in finished(events).error
    assert finished(base_events).completion_tokens == 40
    assert "v2" not in engine.versions.contexts
    again = await collect(engine, version_ask("v2", adapters, 3))
    assert finished(again).finish_reason is FinishReason.LENGTH


async def test_it_frees_the_least_recently_used_version_past_its_maximum(
    versioned_engine, adapters, tmp_path
):
    """With room for two versions, a third frees the one used longest ago (no row on it),
    context and adapter; that one loads again when asked for."""
    engine = versioned_engine
    await collect(engine, version_ask("v1", adapters, 2))
    await collect(engine, version_ask("v2", adapters, 2))
    third = {**adapters, "v3": adapters["v1"]}  # the same files under a third name
    events = await collect(engine, version_ask("v3", third, 2))
    assert started(events).model_version == "v3"
    assert list(engine.versions.adapters) == ["v2", "v3"]
    assert set(engine.versions.contexts) == {None, "v2", "v3"}
    again = await collect(engine, version_ask("v1", adapters, 2))
    assert finished(again).finish_reason is FinishReason.LENGTH
    assert list(engine.versions.adapters) == ["v3", "v1"]
