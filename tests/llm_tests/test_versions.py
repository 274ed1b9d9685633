"""Model versions: LoRA adapters served next to the base model, per row of one batch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from llm.engine.base import FinishReason
from llm.engine.local import LocalEngine
from llm.prompting import encode_chat
from tests.llm_tests.streams import (
    StepGate,
    ask,
    assert_same_logits,
    collect,
    finished,
    stacked_logits,
    start_engine,
    started,
    token_ids,
)

# PEFT still calls a transformers method that is deprecated in favour of another name.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning")


def build_adapter(tiny_model_dir: Path, target: Path, seed: int) -> Path:
    """A LoRA adapter with random (not zero) weights, so it visibly changes the logits."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("adapters")
    return {
        name: build_adapter(tiny_model_dir, folder / name, seed)
        for name, seed in (("v1", 1), ("v2", 2))
    }


@pytest.fixture(scope="module")
def versioned_engine(tiny_model_dir, model_cache_dir) -> LocalEngine:
    """An engine of this module's own, since loading versions changes its model."""
    return start_engine(tiny_model_dir, model_cache_dir)


def load_version(engine: LocalEngine, name: str, path: Path) -> None:
    engine.call(lambda loaded: engine.versions.load(name, str(path))).result(timeout=60)


def unload_version(engine: LocalEngine, name: str) -> None:
    engine.call(lambda loaded: engine.versions.unload(name)).result(timeout=60)


@pytest.fixture
def engine_with_v1(versioned_engine, adapters) -> LocalEngine:
    load_version(versioned_engine, "v1", adapters["v1"])  # idempotent
    return versioned_engine


async def test_it_serves_a_loaded_version_by_name(engine_with_v1, tiny_engine, adapters):
    """A request naming v1 is labelled v1 and gets the adapter's logits, not the base's."""
    request = ask("Hello there", 8, return_logits=True, version="v1")
    events = await collect(engine_with_v1, request)
    assert started(events).model_version == "v1"
    assert finished(events).finish_reason is FinishReason.LENGTH

    base = await collect(tiny_engine, ask("Hello there", 8, return_logits=True))
    first_step_gap = (stacked_logits(events)[0] - stacked_logits(base)[0]).abs().max()
    assert first_step_gap > 0.05

    reference = adapter_forward(tiny_engine, adapters["v1"], events)
    assert_same_logits(stacked_logits(events), reference)


def adapter_forward(plain_engine, adapter: Path, events) -> torch.Tensor:
    """The logits PEFT itself gives for the same prompt and tokens, in one forward pass."""
    loaded = plain_engine.loaded
    prompt = encode_chat(loaded.tokenizer, started(events).prompt_messages)
    model = AutoModelForCausalLM.from_pretrained(loaded.path).eval()
    model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False).eval()
    full = torch.tensor([prompt + token_ids(events)[:-1]])
    with torch.inference_mode():
        return model(full).logits[0, len(prompt) - 1 :]


async def test_it_keeps_the_base_model_unchanged_next_to_versions(engine_with_v1, tiny_engine):
    """With adapters loaded, an unversioned request still gets the plain model's logits,
    and naming the base model's label means the base too."""
    plain = await collect(tiny_engine, ask("Hello there", 8, return_logits=True))
    for version in (None, tiny_engine.loaded.name):
        events = await collect(
            engine_with_v1, ask("Hello there", 8, return_logits=True, version=version)
        )
        assert started(events).model_version == tiny_engine.loaded.name
        assert_same_logits(stacked_logits(events), stacked_logits(plain))


async def test_it_mixes_versions_in_one_batch(engine_with_v1, adapters):
    """Base, v1 and v2 rows decoding together each match their solo logits."""
    load_version(engine_with_v1, "v2", adapters["v2"])
    try:
        plan = {
            version: ask(
                f"Question for {version}: what is the time?",
                24,
                return_logits=True,
                version=version,
            )
            for version in (None, "v1", "v2")
        }
        solo = {version: await collect(engine_with_v1, item) for version, item in plan.items()}
        together = await asyncio.gather(*(collect(engine_with_v1, item) for item in plan.values()))
    finally:
        unload_version(engine_with_v1, "v2")

    for version, events in zip(plan, together, strict=True):
        assert started(events).model_version == started(solo[version]).model_version
        assert token_ids(events) == token_ids(solo[version])
        assert_same_logits(stacked_logits(events), stacked_logits(solo[version]))


async def test_it_refuses_an_unknown_version(versioned_engine):
    """A request naming a version that is not loaded gets one Finished(error) naming it."""
    events = await collect(versioned_engine, ask("Hi", 4, version="no-such-version"))
    assert len(events) == 1
    assert finished(events).finish_reason is FinishReason.ERROR
    assert "no-such-version" in finished(events).error


async def test_it_refuses_a_version_after_unloading_it(engine_with_v1, adapters):
    """After unload, requests naming the version are refused; other versions still serve."""
    load_version(engine_with_v1, "v2", adapters["v2"])
    unload_version(engine_with_v1, "v2")
    events = await collect(engine_with_v1, ask("Hi", 4, version="v2"))
    assert finished(events).finish_reason is FinishReason.ERROR
    still = await collect(engine_with_v1, ask("Hi", 4, version="v1"))
    assert finished(still).finish_reason is FinishReason.LENGTH


async def test_it_serves_the_base_after_the_last_version_is_unloaded(
    fresh_engine, adapters, tiny_engine
):
    """Unloading every adapter leaves a working base model, and versions load again."""
    engine = fresh_engine
    load_version(engine, "v1", adapters["v1"])
    unload_version(engine, "v1")

    plain = await collect(tiny_engine, ask("Hello there", 6, return_logits=True))
    events = await collect(engine, ask("Hello there", 6, return_logits=True))
    assert finished(events).finish_reason is FinishReason.LENGTH, finished(events).error
    assert_same_logits(stacked_logits(events), stacked_logits(plain))

    load_version(engine, "v1", adapters["v1"])
    again = await collect(engine, ask("Hello there", 6, version="v1"))
    assert finished(again).finish_reason is FinishReason.LENGTH


async def test_it_ends_rows_of_an_unloaded_version_without_hurting_the_others(
    fresh_engine, adapters
):
    """Unloading a version mid-reply ends its rows with an error; base rows go on."""
    engine = fresh_engine
    load_version(engine, "v2", adapters["v2"])
    versioned_stream = engine.stream(ask("Long story please", 300, version="v2"))
    base = asyncio.create_task(collect(engine, ask("Another long story", 120)))
    versioned = [await anext(versioned_stream) for _ in range(4)]  # Started + 3 tokens
    unload_version(engine, "v2")
    versioned += [event async for event in versioned_stream]
    base_events = await asyncio.wait_for(base, 30)

    assert finished(versioned).finish_reason is FinishReason.ERROR
    assert "unloaded" in finished(versioned).error
    assert finished(base_events).finish_reason is FinishReason.LENGTH
    assert finished(base_events).completion_tokens == 120


async def test_it_loads_a_version_mid_reply_without_changing_running_rows(
    fresh_engine, adapters, tiny_engine, monkeypatch
):
    """Loading the first adapter wraps the model between two steps; a base reply that is
    already running keeps exactly the logits it would have had."""
    request = ask("A long answer, please", 24, return_logits=True)
    plain = await collect(tiny_engine, request)

    gate = StepGate(monkeypatch)
    stream = fresh_engine.stream(request)
    events = [await anext(stream), await anext(stream)]  # Started, the prefill's token
    loading = fresh_engine.call(
        lambda loaded: fresh_engine.versions.load("v1", str(adapters["v1"]))
    )
    gate.allow(1)  # the load runs after this step, before the next one
    loading.result(timeout=30)
    assert gate.taken == 1
    gate.allow(100)
    events += [event async for event in stream]

    assert token_ids(events) == token_ids(plain)
    assert_same_logits(stacked_logits(events), stacked_logits(plain))
