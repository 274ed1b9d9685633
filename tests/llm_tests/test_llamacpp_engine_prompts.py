"""LlamaCppEngine prompts: decoded together and in pieces beside running rows, and
begun where the KV cache already holds them (a conversation's next turn).

These run on the F16 copy, the default: how a prompt is split between calls moves
its logits by rounding only (~0.03 measured), where the Q4_1 file's quantised
activations move them by up to ~1.3 and greedy replies part at near ties."""

from __future__ import annotations

import asyncio

import pytest
import torch

from llm.engine import llamacpp_batch, llamacpp_model
from llm.engine.base import Finished, FinishReason, GenerationRequest, Started, Token
from llm.engine.llamacpp_model import LlamaContext
from llm.prompting import encode_chat
from tests.llm_tests.llamacpp_support import (
    bare_llama,
    reference_logits,
    start_llamacpp_engine,
)
from tests.llm_tests.streams import (
    ask,
    assert_same_logits,
    collect,
    finished,
    greedy,
    stacked_logits,
    started,
    token_ids,
    tokens,
)
from tests.llm_tests.test_local_engine_batching import Recorder

pytestmark = pytest.mark.slow  # the real model's GGUF, one thread

# F16's rounding as a prompt is split differently between decode calls.
F16_NOISE = 0.1


@pytest.fixture
def llama_engine(smollm2_dir, model_cache_dir):
    engine = start_llamacpp_engine(model_cache_dir, weights="f16")
    yield engine
    engine.close()


@pytest.fixture
def one_reply_cache_engine(smollm2_dir, model_cache_dir):
    """Room in its cache for one 256-token conversation at a time."""
    engine = start_llamacpp_engine(model_cache_dir, window=256, context_cells=256, weights="f16")
    engine.versions.stop_ids = set()  # replies run to their limit
    yield engine
    engine.close()


class DecodeSpy:
    """Records how many tokens each llama_decode call takes."""

    def __init__(self, monkeypatch):
        self.calls: list[int] = []
        decode = LlamaContext.decode

        def spied(context, batch):
            self.calls.append(batch.n_tokens)
            return decode(context, batch)

        monkeypatch.setattr(LlamaContext, "decode", spied)


async def settled(context: LlamaContext, kept: int) -> list[int]:
    """The kept sequences once ``kept`` are: a finished row is kept by the engine thread
    at its next turn, just after the caller hears Finished."""
    for _ in range(200):
        if len(context.kept_sequences) >= kept:
            break
        await asyncio.sleep(0.01)
    return context.kept_sequences


def prompt_of(engine, events) -> list[int]:
    return encode_chat(engine.loaded.tokenizer, started(events).prompt_messages)


def expected_logits(engine, events) -> torch.Tensor:
    """Bare llama.cpp's logits for this reply, its prompt decoded cold."""
    reference = bare_llama(engine.loaded.path)
    return torch.from_numpy(
        reference_logits(reference, prompt_of(engine, events), token_ids(events))
    )


async def test_prompts_that_arrive_together_are_decoded_in_one_call(llama_engine, monkeypatch):
    """Eight new conversations: their eight prompts take one llama_decode, and each
    reply is what it is alone."""
    questions = [f"Give me fact number {number} about owls." for number in range(8)]
    solo = [await collect(llama_engine, ask(text, 3, return_logits=True)) for text in questions]
    for events in solo:  # no cells of theirs are kept: each starts cold below
        assert finished(events).finish_reason is FinishReason.LENGTH
    llama_engine.versions.context(None).max_kept = 0
    while llama_engine.versions.context(None).forget_oldest():
        pass

    spy = DecodeSpy(monkeypatch)
    together = await asyncio.gather(
        *(collect(llama_engine, ask(text, 3, return_logits=True)) for text in questions)
    )
    prompt_tokens = sum(started(events).prompt_tokens for events in together)
    assert spy.calls[0] == prompt_tokens  # all eight prompts, in the first call
    for alone, events in zip(solo, together, strict=True):
        assert token_ids(events) == token_ids(alone)
        assert_same_logits(stacked_logits(events), stacked_logits(alone), atol=F16_NOISE)


async def test_a_long_prompt_is_decoded_in_pieces_while_another_reply_goes_on(
    llama_engine, monkeypatch
):
    """With 8 prompt tokens a step, a long prompt joins over several steps: the running
    reply gets a token at each of them, and the long prompt's logits are bare
    llama.cpp's for the whole prompt."""
    monkeypatch.setattr(llamacpp_batch, "PROMPT_BUDGET", 8)
    llama_engine.versions.stop_ids = set()  # the running reply outlasts the long prompt
    spy = DecodeSpy(monkeypatch)
    recorder = Recorder(llama_engine)
    recorder.start("running", ask("Count from one to fifty.", 40))
    await recorder.tokens_seen("running", 2)
    text = "Summarise this: " + "the quick brown fox jumps over the lazy dog. " * 3
    recorder.start("long", ask(text, 4, return_logits=True))
    await recorder.wait()

    long = recorder.events["long"]
    prompt_length = started(long).prompt_tokens
    assert prompt_length > 4 * 8
    order = recorder.order
    joined, first = order.index(("long", "Started")), order.index(("long", "Token"))
    written_meanwhile = [name for name, kind in order[joined:first] if kind == "Token"]
    assert written_meanwhile.count("running") >= prompt_length // 8 - 1
    assert max(spy.calls) <= 8 + 1  # a piece of the prompt and the running row's token
    assert_same_logits(stacked_logits(long), expected_logits(llama_engine, long), atol=F16_NOISE)
    assert finished(recorder.events["running"]).completion_tokens == 40


async def test_a_next_turn_decodes_only_what_is_new(llama_engine, monkeypatch):
    """The next turn begins where the last reply's cells were kept: only the end of the
    reply and the new message are decoded, and its logits are bare llama.cpp's for the
    whole prompt decoded cold."""
    first_turn = [{"role": "user", "content": "Name three colours."}]
    first = await collect(llama_engine, GenerationRequest(first_turn, greedy(12)))
    reply = "".join(token.text for token in tokens(first))
    second_turn = [
        *first_turn,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "And three animals?"},
    ]
    spy = DecodeSpy(monkeypatch)
    second = await collect(
        llama_engine, GenerationRequest(second_turn, greedy(6), return_logits=True)
    )

    held = prompt_of(llama_engine, first) + token_ids(first)[:-1]  # the last is never fed
    prompt = prompt_of(llama_engine, second)
    shared = next(
        (i for i, pair in enumerate(zip(held, prompt, strict=False)) if pair[0] != pair[1]),
        len(held),
    )
    assert shared > len(prompt_of(llama_engine, first)) + 6  # the reply is reused too
    assert spy.calls[0] == len(prompt) - shared
    expected = expected_logits(llama_engine, second)
    assert_same_logits(stacked_logits(second), expected, atol=F16_NOISE)


async def test_a_regenerated_reply_starts_from_the_same_logits(llama_engine, monkeypatch):
    """The same prompt again decodes only its last two tokens, and gets exactly the
    logits it got the first time."""
    first = await collect(llama_engine, ask("Suggest a name for a cat.", 4, return_logits=True))
    spy = DecodeSpy(monkeypatch)
    again = await collect(llama_engine, ask("Suggest a name for a cat.", 4, return_logits=True))
    assert spy.calls[0] == 2
    assert_same_logits(stacked_logits(again)[:1], stacked_logits(first)[:1], atol=1e-3)
    assert token_ids(again) == token_ids(first)


async def test_kept_conversations_give_their_cells_to_a_new_reply(one_reply_cache_engine):
    """A cache with room for one long reply: the kept conversation before it is freed for
    it, and the reply runs to its limit."""
    engine = one_reply_cache_engine
    await collect(engine, ask("Tell me a story.", 40))
    context = engine.versions.context(None)
    await settled(context, 1)
    first_kept = context.kept_cells
    assert first_kept > 40
    events = await collect(engine, ask("Now a different story, about the sea.", 180))
    assert started(events).prompt_tokens + 180 + first_kept > context.cells  # it had to go
    assert finished(events).finish_reason is FinishReason.LENGTH, finished(events).error
    assert len(token_ids(events)) == 180
    assert len(await settled(context, 1)) == 1
    assert context.kept_cells == started(events).prompt_tokens + 179


async def test_a_cancelled_prompt_keeps_only_what_was_decoded(llama_engine, monkeypatch):
    """A conversation that leaves while its prompt is decoded in pieces: what was decoded
    is kept, and a later prompt that begins the same way is served right."""
    monkeypatch.setattr(llamacpp_batch, "PROMPT_BUDGET", 8)
    text = "Explain this slowly: " + "one two three four five six seven eight. " * 3
    stream = llama_engine.stream(ask(text, 4))
    assert isinstance(await anext(stream), Started)
    await asyncio.sleep(0.05)
    await stream.aclose()
    context = llama_engine.versions.context(None)
    for _ in range(100):  # the engine drops the row before its next step
        if context.kept_sequences:
            break
        await asyncio.sleep(0.02)
    events = await collect(llama_engine, ask(text, 4, return_logits=True))
    assert isinstance(events[-1], Finished)
    assert [type(event) for event in events[1:-1]] == [Token] * 4
    assert_same_logits(
        stacked_logits(events), expected_logits(llama_engine, events), atol=F16_NOISE
    )


async def test_a_kept_conversation_is_freed_once_unused_for_long(llama_engine, monkeypatch):
    """Kept cells slow every later step a little: a conversation nobody continues is
    freed after KEPT_STEPS steps, even though later prompts share its template."""
    monkeypatch.setattr(llamacpp_model, "KEPT_STEPS", 10)
    context = llama_engine.versions.context(None)
    await collect(llama_engine, ask("Name a fruit.", 4))
    (left,) = await settled(context, 1)
    await collect(llama_engine, ask("Name a river.", 6))  # 6 steps: both still kept
    assert (await settled(context, 2))[0] == left
    await collect(llama_engine, ask("Name a mountain.", 8))  # 14 steps after the first
    assert left not in await settled(context, 2)
    assert len(context.kept_sequences) == 2
