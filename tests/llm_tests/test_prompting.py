"""fit_messages: trimming a conversation to the context window."""

from __future__ import annotations

import copy

import pytest
from transformers import AutoTokenizer

from llm.prompting import encode_chat, fit_messages

SYSTEM = {"role": "system", "content": "You answer in one short sentence."}


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def conversation(turns: int, newest: str = "And what about the last thing?") -> list[dict]:
    """A system prompt, ``turns`` question/answer pairs, then a newest question."""
    messages = [dict(SYSTEM)]
    for turn in range(turns):
        messages.append(
            {"role": "user", "content": f"Question {turn}: tell me about topic {turn}."}
        )
        messages.append({"role": "assistant", "content": f"Answer {turn}: " + "words " * 12})
    messages.append({"role": "user", "content": newest})
    return messages


def test_it_leaves_a_short_conversation_untouched(tokenizer):
    """A prompt that fits comes back as it was, with its exact token ids."""
    messages = conversation(2)
    kept, ids = fit_messages(tokenizer, messages, budget=512)
    assert kept == messages
    assert ids == encode_chat(tokenizer, messages)


def test_it_drops_the_oldest_turns_first(tokenizer):
    """System and newest message stay; what remains is the newest part of the history."""
    messages = conversation(20)
    original = copy.deepcopy(messages)
    kept, ids = fit_messages(tokenizer, messages, budget=200)

    assert len(ids) <= 200
    assert ids == encode_chat(tokenizer, kept)
    assert kept[0] == SYSTEM
    assert kept[-1] == messages[-1]
    assert kept[1]["role"] == "user"
    history = kept[1:]
    assert history == messages[-len(history) :]
    assert messages == original  # the caller's list is not modified


def test_it_drops_no_more_than_needed(tokenizer):
    """Keeping one more question/answer pair would not have fitted."""
    messages = conversation(20)
    kept, _ = fit_messages(tokenizer, messages, budget=200)
    one_more_pair = [SYSTEM, *messages[-(len(kept) - 1) - 2 :]]
    assert one_more_pair[1]["role"] == "user"
    assert len(encode_chat(tokenizer, one_more_pair)) > 200


def test_it_never_starts_the_history_with_an_assistant_reply(tokenizer):
    """After trimming, the first message after the system prompt is a user message,
    even when the history held several assistant messages in a row."""
    messages = [
        dict(SYSTEM),
        {"role": "assistant", "content": "Hello! How can I help? " * 3},
        {"role": "user", "content": "Tell me a long story. " * 10},
        {"role": "assistant", "content": "Once upon a time. " * 10},
        {"role": "assistant", "content": "The end. " * 10},
        {"role": "user", "content": "Another one?"},
    ]
    for budget in range(30, len(encode_chat(tokenizer, messages)) + 1, 5):
        kept, ids = fit_messages(tokenizer, messages, budget=budget)
        assert len(ids) <= budget
        assert kept[0] == SYSTEM
        assert kept[-1]["content"].endswith("Another one?")
        if len(kept) > 2:
            assert kept[1]["role"] == "user", (budget, kept)


def test_it_keeps_every_system_message(tokenizer):
    """System messages are never dropped, wherever they sit in the history."""
    messages = [dict(SYSTEM), *conversation(20)[1:]]
    messages.insert(5, {"role": "system", "content": "Be kind."})
    kept, _ = fit_messages(tokenizer, messages, budget=120)
    assert [message for message in kept if message["role"] == "system"] == [
        SYSTEM,
        {"role": "system", "content": "Be kind."},
    ]


def test_it_cuts_an_overlong_newest_message_from_its_beginning(tokenizer):
    """A single message longer than the window keeps its end, and the prompt fits."""
    text = " ".join(f"sentence {number}." for number in range(1500))
    messages = [dict(SYSTEM), {"role": "user", "content": text}]
    kept, ids = fit_messages(tokenizer, messages, budget=100)

    assert len(ids) <= 100
    assert len(ids) >= 90  # no more was cut than needed, give or take a re-tokenisation
    assert kept[0] == SYSTEM
    assert kept[1]["role"] == "user"
    assert 0 < len(kept[1]["content"]) < len(text)
    assert text.endswith(kept[1]["content"])
    assert ids == encode_chat(tokenizer, kept)


def test_it_drops_the_history_before_cutting_the_newest_message(tokenizer):
    """With an overlong newest message, all older turns go before any cut."""
    text = "filler " * 800 + "the real question?"
    kept, ids = fit_messages(tokenizer, conversation(5, newest=text), budget=150)
    assert [message["role"] for message in kept] == ["system", "user"]
    assert kept[1]["content"].endswith("the real question?")
    assert len(ids) <= 150


def test_it_cuts_the_system_prompt_last(tokenizer):
    """When even an empty newest message does not fit, the system prompt's start goes."""
    messages = [
        {"role": "system", "content": "Rule. " * 200 + "Be brief."},
        {"role": "user", "content": "Hi " * 50},
    ]
    kept, ids = fit_messages(tokenizer, messages, budget=20)
    assert len(ids) <= 20
    assert kept[1]["content"] == ""
    assert kept[0]["content"].endswith("Be brief.")


def test_it_refuses_a_budget_the_chat_format_cannot_meet(tokenizer):
    """A budget below the chat format's own tokens raises ValueError instead of looping."""
    with pytest.raises(ValueError):
        fit_messages(tokenizer, conversation(1), budget=0)
    with pytest.raises(ValueError, match="does not fit"):
        fit_messages(tokenizer, conversation(1), budget=5)
