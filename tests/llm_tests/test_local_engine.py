"""LocalEngine: the event stream, context fitting, failures."""

from __future__ import annotations

import asyncio

import pytest

from llm.engine import local
from llm.engine.base import (
    EngineError,
    EngineState,
    Finished,
    FinishReason,
    GenerationRequest,
    Started,
    Token,
)
from llm.engine.local import LocalEngine
from llm.loading import load_model
from llm.prompting import encode_chat, fit_messages
from llm.sampling import SamplingParams
from tests.llm_tests.streams import (
    StepGate,
    ask,
    collect,
    finished,
    greedy,
    started,
    token_ids,
    tokens,
)


async def test_it_streams_started_then_tokens_then_finished(tiny_engine, tiny_model_dir):
    """Started carries the exact prompt, then one Token per step, then one Finished."""
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name three colours."},
    ]
    request = GenerationRequest(messages, SamplingParams(temperature=0, max_new_tokens=6))
    events = await collect(tiny_engine, request)

    tokenizer = tiny_engine.loaded.tokenizer
    assert started(events) == Started(
        prompt_messages=messages,
        prompt_tokens=len(encode_chat(tokenizer, messages)),
        model_version=tiny_model_dir.name,
    )
    assert [type(event) for event in events] == [Started, *[Token] * 6, Finished]
    done = finished(events)
    assert done.finish_reason is FinishReason.LENGTH
    assert done.completion_tokens == 6
    assert done.error == ""
    assert 0 < done.time_to_first_token <= done.duration
    text = "".join(token.text for token in tokens(events))
    assert text == tokenizer.decode(token_ids(events), skip_special_tokens=True)
    assert all(token.logits is None for token in tokens(events))


async def test_it_sends_tokens_before_the_reply_is_finished(tiny_engine, monkeypatch):
    """The first token reaches the caller while later steps have not even run."""
    gate = StepGate(monkeypatch)
    stream = tiny_engine.stream(ask("Hello", max_new_tokens=4))
    assert isinstance(await anext(stream), Started)
    first = await asyncio.wait_for(anext(stream), 5)
    assert isinstance(first, Token)
    assert gate.taken == 0

    gate.allow(3)
    rest = [event async for event in stream]
    assert [type(event) for event in rest] == [Token, Token, Token, Finished]
    assert gate.taken == 3


async def test_it_returns_logits_when_asked(tiny_engine):
    """return_logits gives each Token the full next-token logits it was picked from."""
    events = await collect(tiny_engine, ask("Hello", max_new_tokens=3, return_logits=True))
    vocabulary = len(tiny_engine.loaded.tokenizer)
    for token in tokens(events):
        assert token.logits.shape == (vocabulary,)
        assert int(token.logits.argmax()) == token.token_id


async def test_it_reproduces_a_seeded_reply(tiny_engine):
    """The same seed gives the same tokens, alone or next to another request."""

    def seeded(seed: int) -> GenerationRequest:
        sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=12, seed=seed)
        return GenerationRequest([{"role": "user", "content": "Tell me a story"}], sampling)

    alone = token_ids(await collect(tiny_engine, seeded(3)))
    together, _ = await asyncio.gather(
        collect(tiny_engine, seeded(3)), collect(tiny_engine, ask("Something else", 12))
    )
    assert token_ids(together) == alone
    assert token_ids(await collect(tiny_engine, seeded(4))) != alone


async def test_it_stops_at_an_end_of_turn_token(tiny_engine, monkeypatch):
    """A stop token ends the reply with reason stop and is neither sent nor counted."""
    sampling = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=12, seed=11)
    request = GenerationRequest([{"role": "user", "content": "Tell me a story"}], sampling)
    free_run = token_ids(await collect(tiny_engine, request))
    # The first token, from the third on, that the reply has not used before.
    stop_at = next(i for i in range(2, len(free_run)) if free_run[i] not in free_run[:i])
    monkeypatch.setattr(tiny_engine.versions, "stop_ids", {free_run[stop_at]})

    events = await collect(tiny_engine, request)
    assert token_ids(events) == free_run[:stop_at]
    assert finished(events).finish_reason is FinishReason.STOP
    assert finished(events).completion_tokens == stop_at


async def test_it_fails_one_request_whose_sampling_breaks_and_keeps_serving(
    tiny_engine, monkeypatch
):
    """An error while picking a token fails that request only; the engine goes on."""
    real_pick = local.pick_token

    def pick(logits, params, generator, reply_ids=()):
        if params.seed == 666:
            raise RuntimeError("probability tensor contains nan")
        return real_pick(logits, params, generator, reply_ids)

    monkeypatch.setattr(local, "pick_token", pick)
    broken = GenerationRequest(
        [{"role": "user", "content": "Hi"}],
        SamplingParams(temperature=1.0, max_new_tokens=8, seed=666),
    )
    bad, good = await asyncio.wait_for(
        asyncio.gather(collect(tiny_engine, broken), collect(tiny_engine, ask("Hello", 20))), 20
    )
    assert finished(bad).finish_reason is FinishReason.ERROR
    assert "sampling failed" in finished(bad).error
    assert finished(good).finish_reason is FinishReason.LENGTH
    assert finished(good).completion_tokens == 20
    after = await asyncio.wait_for(collect(tiny_engine, ask("Still there?", 3)), 10)
    assert finished(after).finish_reason is FinishReason.LENGTH


async def test_it_streams_text_only_in_whole_characters(tiny_engine, monkeypatch):
    """Tokens that end inside a multi-byte character send no text until it completes;
    the pieces add up to the whole reply."""
    text = "Café 👋 naïve 日本語 done."
    script = tiny_engine.loaded.tokenizer.encode(text, add_special_tokens=False)
    picks = iter(script)
    monkeypatch.setattr(
        local, "pick_token", lambda logits, params, generator, reply_ids=(): next(picks)
    )

    events = await collect(tiny_engine, ask("Say it", max_new_tokens=len(script)))
    pieces = [token.text for token in tokens(events)]
    assert token_ids(events) == script
    assert "".join(pieces) == text
    assert not any("\ufffd" in piece for piece in pieces)
    assert "" in pieces  # some tokens really did end mid-character


async def test_it_sends_the_held_back_bytes_when_the_length_limit_cuts_a_character(
    tiny_engine, monkeypatch
):
    """A reply cut off inside an emoji still adds up to its decoded text."""
    tokenizer = tiny_engine.loaded.tokenizer
    script = tokenizer.encode("Hi 👋", add_special_tokens=False)
    cut = next(n for n in range(1, len(script)) if tokenizer.decode(script[:n]).endswith("\ufffd"))
    picks = iter(script)
    monkeypatch.setattr(
        local, "pick_token", lambda logits, params, generator, reply_ids=(): next(picks)
    )

    events = await collect(tiny_engine, ask("Say it", max_new_tokens=cut))
    assert finished(events).finish_reason is FinishReason.LENGTH
    assert "".join(token.text for token in tokens(events)) == tokenizer.decode(script[:cut])


# -- the context window (512 tokens on the tiny model) --------------------------


def long_history(turns: int = 30) -> list[dict]:
    messages = [{"role": "system", "content": "You are terse."}]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: " + "why " * 10})
        messages.append({"role": "assistant", "content": f"Answer {turn}: " + "because " * 10})
    messages.append({"role": "user", "content": "And finally?"})
    return messages


async def test_it_trims_a_long_history_to_the_window(tiny_engine):
    """Oldest turns go first so prompt + reply fit; Started shows what the model saw."""
    messages = long_history()
    tokenizer = tiny_engine.loaded.tokenizer
    assert len(encode_chat(tokenizer, messages)) > 512

    events = await collect(tiny_engine, GenerationRequest(messages, greedy(64)))
    shown = started(events)
    expected_messages, expected_ids = fit_messages(tokenizer, messages, 512 - 64)
    assert shown.prompt_messages == expected_messages
    assert shown.prompt_tokens == len(expected_ids)
    assert shown.prompt_messages[0] == messages[0]
    assert shown.prompt_messages[1]["role"] == "user"
    assert shown.prompt_messages[-1] == messages[-1]
    assert shown.prompt_messages[1:] == messages[-(len(shown.prompt_messages) - 1) :]
    assert shown.prompt_tokens + 64 <= 512
    assert finished(events).completion_tokens == 64


async def test_it_cuts_an_overlong_message_and_fills_the_window(tiny_engine):
    """A message longer than the window keeps its end; prompt and reply fill the window."""
    text = " ".join(f"point {number}" for number in range(600)) + " so what do you think?"
    request = GenerationRequest(
        [{"role": "user", "content": text}], SamplingParams(temperature=0, max_new_tokens=100)
    )
    events = await collect(tiny_engine, request)
    shown = started(events)
    assert len(shown.prompt_messages) == 1
    assert text.endswith(shown.prompt_messages[0]["content"])
    assert shown.prompt_messages[0]["content"].endswith("so what do you think?")
    assert 400 <= shown.prompt_tokens <= 412
    assert finished(events).finish_reason is FinishReason.LENGTH
    assert finished(events).completion_tokens == 100


async def test_it_refuses_more_new_tokens_than_the_window_allows(tiny_engine):
    """max_new_tokens too large for the window: one Finished with a clear error."""
    request = GenerationRequest(
        [{"role": "user", "content": "Hi"}], SamplingParams(temperature=0, max_new_tokens=500)
    )
    events = await collect(tiny_engine, request)
    assert len(events) == 1
    assert finished(events).finish_reason is FinishReason.ERROR
    assert "max_new_tokens" in finished(events).error
    assert "512" in finished(events).error
    assert finished(events).completion_tokens == 0


# -- a model that cannot be loaded -----------------------------------------------


@pytest.fixture(scope="module")
def broken_engine(tmp_path_factory) -> LocalEngine:
    missing = tmp_path_factory.mktemp("models") / "no-such-model"
    engine = LocalEngine(lambda: load_model(str(missing), missing.parent, device="cpu"))
    engine.start()
    return engine


async def test_it_reports_a_failed_load_to_wait_ready(broken_engine):
    """A model that cannot load makes wait_ready raise EngineError and the state FAILED."""
    with pytest.raises(EngineError, match="failed to load"):
        await asyncio.wait_for(broken_engine.wait_ready(), 30)
    assert broken_engine.state is EngineState.FAILED


async def test_it_answers_every_request_with_an_error_after_a_failed_load(broken_engine):
    """No hang: each stream gets one Finished(error); calls fail with EngineError."""
    for _ in range(2):
        events = await asyncio.wait_for(collect(broken_engine, ask("Hi")), 30)
        assert len(events) == 1
        assert finished(events).finish_reason is FinishReason.ERROR
        assert "failed to load" in finished(events).error
    with pytest.raises(EngineError):
        broken_engine.call(lambda loaded: None).result(timeout=30)


def repeated_runs(ids: list[int], size: int) -> int:
    runs = [tuple(ids[start : start + size]) for start in range(len(ids) - size + 1)]
    return len(runs) - len(set(runs))


async def test_a_reply_never_repeats_a_run_of_its_own_tokens(tiny_engine):
    """The n-gram block (llm.sampling) is applied while serving: the random tiny model
    loops at once without it, and never repeats a 3-token run with it."""
    loose, strict = (
        GenerationRequest(
            [{"role": "user", "content": "Hello"}],
            SamplingParams(temperature=0, max_new_tokens=48, no_repeat_ngram_size=size),
        )
        for size in (0, 3)
    )
    assert repeated_runs(token_ids(await collect(tiny_engine, loose)), 3) > 0
    assert repeated_runs(token_ids(await collect(tiny_engine, strict)), 3) == 0
