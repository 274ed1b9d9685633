"""LlamaCppEngine on the embedded GGUF: the event stream, parity with bare llama.cpp and
the transformers tokenizer, context fitting, failures."""

from __future__ import annotations

import asyncio
import ctypes

import llama_cpp
import pytest
import torch

from llm.engine import llamacpp
from llm.engine.base import (
    EngineError,
    EngineState,
    Finished,
    FinishReason,
    GenerationRequest,
    Started,
    Token,
)
from llm.engine.llamacpp import LlamaCppEngine
from llm.engine.llamacpp_batch import LlamaBatch
from llm.engine.llamacpp_model import load_llama_model
from llm.prompting import encode_chat, fit_messages
from llm.sampling import SamplingParams
from tests.llm_tests.llamacpp_support import (
    TEST_WINDOW,
    bare_llama,
    reference_logits,
    start_llamacpp_engine,
)
from tests.llm_tests.streams import (
    StepGate,
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

pytestmark = pytest.mark.slow  # the real model, but its GGUF loads in about a second


@pytest.fixture(scope="module")
def llama_engine(smollm2_dir, model_cache_dir):
    engine = start_llamacpp_engine(model_cache_dir)
    yield engine
    engine.close()


def test_it_reads_the_same_token_ids_as_the_transformers_tokenizer(llama_engine):
    """The GGUF's vocabulary gives the Hugging Face tokenizer's ids, special tokens too,
    so prompts made by the chat template mean the same to llama.cpp."""
    model = llama_engine.loaded
    text = "<|im_start|>user\nCafé 👋 naïve 日本語, x=[1, 2]!<|im_end|>\n"
    expected = model.tokenizer.encode(text, add_special_tokens=False)
    buffer = (llama_cpp.llama_token * 256)()
    vocab = llama_cpp.llama_model_get_vocab(model.pointer)
    data = text.encode()
    count = llama_cpp.llama_tokenize(vocab, data, len(data), buffer, 256, False, True)
    assert list(buffer[:count]) == expected
    assert model.vocab_size == len(model.tokenizer)
    for token_id in (0, 1, 2, 504, 49151):
        piece = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(vocab, token_id, piece, 64, 0, True)
        assert piece.raw[:size].decode() == model.tokenizer.decode([token_id])


async def test_it_streams_started_then_tokens_then_finished(llama_engine):
    """Started carries the exact prompt and the model's label, then one Token per step,
    then one Finished."""
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name three colours."},
    ]
    request = GenerationRequest(messages, SamplingParams(temperature=0, max_new_tokens=6))
    events = await collect(llama_engine, request)

    tokenizer = llama_engine.loaded.tokenizer
    assert started(events) == Started(
        prompt_messages=messages,
        prompt_tokens=len(encode_chat(tokenizer, messages)),
        model_version="SmolLM2-135M-Instruct",  # as the transformers engine labels it
    )
    assert [type(event) for event in events] == [Started, *[Token] * 6, Finished]
    done = finished(events)
    assert done.finish_reason is FinishReason.LENGTH
    assert (done.completion_tokens, done.error) == (6, "")
    assert 0 < done.time_to_first_token <= done.duration
    text = "".join(token.text for token in tokens(events))
    assert text == tokenizer.decode(token_ids(events), skip_special_tokens=True)
    assert all(token.logits is None for token in tokens(events))


async def test_it_gives_bare_llama_cpp_logits(llama_engine):
    """Each token's logits are what llama-cpp-python's own Llama computes for the same
    prompt and reply: the GGUF is served as it is, not approximated."""
    events = await collect(
        llama_engine, ask("What is the capital of France?", 12, return_logits=True)
    )
    prompt = encode_chat(llama_engine.loaded.tokenizer, started(events).prompt_messages)
    expected = reference_logits(bare_llama(llama_engine.loaded.path), prompt, token_ids(events))
    assert_same_logits(stacked_logits(events), torch.from_numpy(expected), atol=1e-3)
    assert [int(row.argmax()) for row in stacked_logits(events)] == token_ids(events)


async def test_it_sends_tokens_before_the_reply_is_finished(llama_engine, monkeypatch):
    """The first token reaches the caller while later steps have not even run."""
    gate = StepGate(monkeypatch, LlamaBatch)
    stream = llama_engine.stream(ask("Hello", max_new_tokens=4))
    assert isinstance(await anext(stream), Started)
    gate.allow(1)
    first = await asyncio.wait_for(anext(stream), 10)  # from the step that decodes the prompt
    assert isinstance(first, Token)
    assert gate.taken == 1

    gate.allow(3)
    rest = [event async for event in stream]
    assert [type(event) for event in rest] == [Token, Token, Token, Finished]
    assert gate.taken == 4


async def test_it_reproduces_a_seeded_reply(llama_engine):
    """The same seed gives the same tokens, alone or next to another request."""

    def seeded(seed: int) -> GenerationRequest:
        sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=12, seed=seed)
        return GenerationRequest([{"role": "user", "content": "Tell me a story"}], sampling)

    alone = token_ids(await collect(llama_engine, seeded(3)))
    together, _ = await asyncio.gather(
        collect(llama_engine, seeded(3)), collect(llama_engine, ask("Something else", 12))
    )
    assert token_ids(together) == alone
    assert token_ids(await collect(llama_engine, seeded(4))) != alone


async def test_it_stops_at_an_end_of_turn_token(llama_engine, monkeypatch):
    """A stop token ends the reply with reason stop and is neither sent nor counted;
    the model's own end of turn does the same."""
    own = await collect(llama_engine, ask("What is 2 + 2? Answer in one word.", 40))
    assert finished(own).finish_reason is FinishReason.STOP
    assert finished(own).completion_tokens == len(token_ids(own)) < 40

    sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=12, seed=11)
    request = GenerationRequest([{"role": "user", "content": "Tell me a story"}], sampling)
    free_run = token_ids(await collect(llama_engine, request))
    stop_at = next(i for i in range(2, len(free_run)) if free_run[i] not in free_run[:i])
    monkeypatch.setattr(llama_engine.versions, "stop_ids", {free_run[stop_at]})

    events = await collect(llama_engine, request)
    assert token_ids(events) == free_run[:stop_at]
    assert finished(events).finish_reason is FinishReason.STOP
    assert finished(events).completion_tokens == stop_at


async def test_it_fails_one_request_whose_sampling_breaks_and_keeps_serving(
    llama_engine, monkeypatch
):
    """An error while picking a token fails that request only; the engine goes on."""
    real_pick = llamacpp.pick_token

    def pick(logits, params, generator, reply_ids=()):
        if params.seed == 666:
            raise RuntimeError("probability tensor contains nan")
        return real_pick(logits, params, generator, reply_ids)

    monkeypatch.setattr(llamacpp, "pick_token", pick)
    broken = GenerationRequest(
        [{"role": "user", "content": "Hi"}],
        SamplingParams(temperature=1.0, max_new_tokens=8, seed=666),
    )
    bad, good = await asyncio.wait_for(
        asyncio.gather(collect(llama_engine, broken), collect(llama_engine, ask("Hello", 20))), 60
    )
    assert finished(bad).finish_reason is FinishReason.ERROR
    assert "sampling failed" in finished(bad).error
    assert finished(good).finish_reason is FinishReason.LENGTH
    assert finished(good).completion_tokens == 20
    after = await asyncio.wait_for(collect(llama_engine, ask("Still there?", 3)), 30)
    assert finished(after).finish_reason is FinishReason.LENGTH


async def test_it_streams_text_only_in_whole_characters(llama_engine, monkeypatch):
    """Tokens that end inside a multi-byte character send no text until it completes;
    the pieces add up to the whole reply."""
    text = "Café 👋 naïve 日本語 done."
    script = llama_engine.loaded.tokenizer.encode(text, add_special_tokens=False)
    picks = iter(script)
    monkeypatch.setattr(
        llamacpp, "pick_token", lambda logits, params, generator, reply_ids=(): next(picks)
    )

    events = await collect(llama_engine, ask("Say it", max_new_tokens=len(script)))
    pieces = [token.text for token in tokens(events)]
    assert token_ids(events) == script
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)
    assert "" in pieces


# -- the context window (TEST_WINDOW tokens here) --------------------------------


def long_history(turns: int = 6) -> list[dict]:
    messages = [{"role": "system", "content": "You are terse."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: " + "why " * 10})
        messages.append({"role": "assistant", "content": f"Answer {turn}: " + "because " * 10})
    messages.append({"role": "user", "content": "And finally?"})
    return messages


async def test_it_trims_a_long_history_to_the_window(llama_engine):
    """Oldest turns go first so prompt + reply fit; Started shows what the model saw."""
    messages = long_history()
    tokenizer = llama_engine.loaded.tokenizer
    assert len(encode_chat(tokenizer, messages)) > TEST_WINDOW

    events = await collect(llama_engine, GenerationRequest(messages, greedy(16)))
    shown = started(events)
    expected_messages, expected_ids = fit_messages(tokenizer, messages, TEST_WINDOW - 16)
    assert shown.prompt_messages == expected_messages
    assert shown.prompt_tokens == len(expected_ids)
    assert shown.prompt_messages[0] == messages[0]
    assert shown.prompt_messages[-1] == messages[-1]
    assert finished(events).completion_tokens + shown.prompt_tokens <= TEST_WINDOW


async def test_it_refuses_more_new_tokens_than_the_window_allows(llama_engine):
    """max_new_tokens too large for the window: one Finished with a clear error."""
    request = GenerationRequest(
        [{"role": "user", "content": "Hi"}], SamplingParams(temperature=0, max_new_tokens=500)
    )
    events = await collect(llama_engine, request)
    assert len(events) == 1
    assert finished(events).finish_reason is FinishReason.ERROR
    assert "max_new_tokens" in finished(events).error
    assert str(TEST_WINDOW) in finished(events).error


# -- a model that cannot be loaded -----------------------------------------------


@pytest.fixture(scope="module")
def broken_engine(tmp_path_factory, model_cache_dir) -> LlamaCppEngine:
    missing = tmp_path_factory.mktemp("models") / "no-such-model.gguf"
    engine = LlamaCppEngine(lambda: load_llama_model(str(missing), model_cache_dir))
    engine.start()
    yield engine
    engine.close()


async def test_it_reports_a_failed_load_to_wait_ready_and_every_request(broken_engine):
    """A GGUF that cannot load: wait_ready raises EngineError, the state is FAILED, each
    stream gets one Finished(error) and calls fail."""
    with pytest.raises(EngineError, match="failed to load"):
        await asyncio.wait_for(broken_engine.wait_ready(), 30)
    assert broken_engine.state is EngineState.FAILED
    events = await asyncio.wait_for(collect(broken_engine, ask("Hi")), 30)
    assert len(events) == 1
    assert "failed to load" in finished(events).error
    with pytest.raises(EngineError):
        broken_engine.call(lambda loaded: None).result(timeout=30)


def test_close_returns_once_the_model_is_freed(model_cache_dir):
    """close() waits for the engine thread to free the GGUF and its contexts (a
    process that exits right after, or the gate's next stage, finds nothing held);
    a request after it is refused at once."""
    engine = start_llamacpp_engine(model_cache_dir)
    model = engine.loaded
    engine.close()
    assert not engine._thread.is_alive()
    assert model.pointer is None
    events = asyncio.run(collect(engine, ask("Hello", 4)))
    assert finished(events).finish_reason is FinishReason.ERROR
    engine.close()  # again: nothing left to wait for
