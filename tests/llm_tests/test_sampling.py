"""SamplingParams validation and pick_token."""

from __future__ import annotations

import math

import pytest
import torch

from llm.sampling import (
    MAX_NEW_TOKENS_LIMIT,
    InvalidSampling,
    ReplyNGramBlock,
    SamplingParams,
    pick_token,
    repeating_tokens,
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.1),
        ("temperature", 2.01),
        ("temperature", math.nan),
        ("temperature", math.inf),
        ("temperature", "0.7"),
        ("temperature", None),
        ("temperature", True),
        ("top_p", 0),
        ("top_p", 0.0),
        ("top_p", -0.5),
        ("top_p", 1.01),
        ("top_p", math.nan),
        ("top_p", "high"),
        ("max_new_tokens", 0),
        ("max_new_tokens", -3),
        ("max_new_tokens", MAX_NEW_TOKENS_LIMIT + 1),
        ("max_new_tokens", 12.0),
        ("max_new_tokens", math.nan),
        ("max_new_tokens", True),
        ("max_new_tokens", "64"),
        ("seed", 1.5),
        ("seed", "42"),
        ("seed", False),
    ],
)
def test_it_rejects_bad_values_naming_the_field(field, value):
    """Every out-of-range or wrongly typed setting raises InvalidSampling for that field."""
    with pytest.raises(InvalidSampling) as raised:
        SamplingParams(**{field: value})
    assert raised.value.field == field
    # A sentence a person reads, naming the setting as the settings panel does.
    label = {"temperature": "Temperature", "top_p": "Top-p", "seed": "Seed"}
    assert str(raised.value).startswith(label.get(field, "Maximum reply length"))
    assert str(raised.value).endswith(".") and "[" not in str(raised.value)


def test_it_is_a_value_error():
    """Callers that only know ValueError still catch a bad setting."""
    with pytest.raises(ValueError):
        SamplingParams(top_p=0)


@pytest.mark.parametrize(
    "values",
    [
        {"temperature": 0},
        {"temperature": 2.0},
        {"top_p": 1},
        {"top_p": 1e-6},
        {"max_new_tokens": 1},
        {"max_new_tokens": MAX_NEW_TOKENS_LIMIT},
        {"seed": 0},
    ],
)
def test_it_accepts_the_edges_of_each_range(values):
    """The documented bounds themselves are allowed."""
    assert SamplingParams(**values)


def test_it_round_trips_through_a_dict_ignoring_unknown_keys():
    """from_dict(as_dict()) is the identity; extra keys from a form are dropped."""
    params = SamplingParams(temperature=0.3, top_p=0.5, max_new_tokens=7, seed=9)
    assert SamplingParams.from_dict({**params.as_dict(), "stream": True}) == params
    assert SamplingParams.from_dict({}) == SamplingParams()


def test_it_is_greedy_only_at_temperature_zero():
    """Temperature 0 means greedy; any positive temperature samples."""
    assert SamplingParams(temperature=0).greedy
    assert not SamplingParams(temperature=0.01).greedy


@pytest.fixture
def logits() -> torch.Tensor:
    return torch.randn(500, generator=torch.Generator().manual_seed(1))


def test_it_picks_the_argmax_when_greedy(logits):
    """Greedy picks the highest logit and needs no generator."""
    assert pick_token(logits, SamplingParams(temperature=0), None) == int(logits.argmax())


def test_it_reproduces_a_seeded_draw(logits):
    """The same seed gives the same sequence of tokens; another seed a different one."""
    params = SamplingParams(temperature=1.5, top_p=1.0)

    def draw(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return [pick_token(logits, params, generator) for _ in range(20)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_it_behaves_like_greedy_with_a_tiny_top_p(logits):
    """top_p keeps at least one token, so a tiny top_p always keeps just the best."""
    params = SamplingParams(temperature=2.0, top_p=1e-6)
    generator = torch.Generator().manual_seed(0)
    picks = {pick_token(logits, params, generator) for _ in range(50)}
    assert picks == {int(logits.argmax())}


def test_it_samples_only_inside_the_top_p_nucleus():
    """With top_p 0.5 over probabilities 0.4/0.3/0.2/0.1 only the first two are drawn."""
    logits = torch.tensor([0.4, 0.3, 0.2, 0.1]).log()
    params = SamplingParams(temperature=1.0, top_p=0.5)
    generator = torch.Generator().manual_seed(0)
    picks = {pick_token(logits, params, generator) for _ in range(300)}
    assert picks == {0, 1}


def test_it_survives_a_vanishingly_small_temperature(logits):
    """A valid but tiny temperature acts like greedy instead of producing NaNs."""
    params = SamplingParams(temperature=1e-40, top_p=1.0)
    assert pick_token(logits, params, torch.Generator().manual_seed(0)) == int(logits.argmax())


# -- the n-gram block: a reply never repeats a run of n of its own tokens --------------


def test_it_bans_the_token_that_would_repeat_a_run_of_the_replys_own_tokens():
    reply = [5, 6, 7, 8, 9, 5, 6]
    assert repeating_tokens(reply, 3) == [7]  # "5 6" was followed by 7: "5 6 7" again
    assert repeating_tokens(reply, 4) == []  # "9 5 6" never came before
    assert repeating_tokens([1, 1, 1], 2) == [1]
    assert repeating_tokens(reply, 0) == [] and repeating_tokens([1, 2], 3) == []


def test_a_greedy_loop_is_broken_and_an_unrepeated_reply_is_untouched():
    """The argmax would say "5 6 7" a second time; the block makes it say something else."""
    logits = torch.zeros(10)
    logits[7], logits[3] = 5.0, 4.0
    params = SamplingParams(temperature=0.0, no_repeat_ngram_size=3)
    assert pick_token(logits, params, None, reply_ids=[5, 6, 7, 8, 5, 6]) == 3
    assert pick_token(logits, params, None, reply_ids=[5, 6, 8, 5, 6]) == 7
    assert logits[7] == 5.0  # the caller's logits are left as they were
    off = SamplingParams(temperature=0.0, no_repeat_ngram_size=0)
    assert pick_token(logits, off, None, reply_ids=[5, 6, 7, 8, 5, 6]) == 7


def test_sampling_never_draws_a_banned_token():
    logits = torch.tensor([0.0, 0.0, 3.0, 0.0])
    params = SamplingParams(temperature=1.5, top_p=1.0, no_repeat_ngram_size=2, seed=1)
    generator = torch.Generator().manual_seed(1)
    draws = {pick_token(logits, params, generator, reply_ids=[2, 1, 2]) for _ in range(200)}
    assert 1 not in draws and draws  # "2 1" came before: 1 after 2 would repeat it


def test_the_gates_generate_rule_is_the_engines_on_the_reply_only():
    """Prompt tokens (left-padded to ``prompt_width``) never count: an answer may quote."""
    block = ReplyNGramBlock(size=2, prompt_width=3)
    input_ids = torch.tensor([[4, 9, 4, 9, 4], [0, 4, 9, 4, 2]])
    scores = block(input_ids, torch.zeros(2, 10))
    assert scores[0].isinf().nonzero().flatten().tolist() == []  # reply "9 4": no run again
    assert scores[1].isinf().nonzero().flatten().tolist() == []
    scores = block(torch.tensor([[0, 0, 0, 4, 9, 4]]), torch.zeros(1, 10))
    assert scores[0].isinf().nonzero().flatten().tolist() == [9]


def test_the_default_block_is_on_and_validated():
    assert SamplingParams().no_repeat_ngram_size == 10
    with pytest.raises(InvalidSampling) as refused:
        SamplingParams(no_repeat_ngram_size=-1)
    assert refused.value.field == "no_repeat_ngram_size"
