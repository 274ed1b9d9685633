"""DecodeBatch: rows join after a solo prefill and leave between steps."""

from __future__ import annotations

import pytest
import torch

from llm.engine.batch import DecodeBatch
from llm.prompting import encode_chat
from tests.llm_tests.streams import assert_same_logits


@pytest.fixture(scope="module")
def prompts(tiny_loaded) -> dict[str, list[int]]:
    """Prompts of clearly different lengths, so every join re-pads someone."""

    def ids(text: str) -> list[int]:
        return encode_chat(tiny_loaded.tokenizer, [{"role": "user", "content": text}])

    return {
        "short": ids("Hi"),
        "medium": ids("Tell me about the history of the printing press in Europe."),
        "long": ids("Explain, step by step and with examples, " * 8),
    }


def solo_run(loaded, prompt_ids: list[int], steps: int) -> torch.Tensor:
    """Greedy logits for ``prompt_ids`` with the batch to itself: [steps + 1, vocab]."""
    batch = DecodeBatch(loaded)
    logits = [batch.prefill(prompt_ids, None)]
    for _ in range(steps):
        batch.set_next_token(0, int(logits[-1].argmax()))
        logits.append(batch.step()[0])
    return torch.stack(logits)


class Rows:
    """Drives a batch by name, feeding each row its own greedy token."""

    def __init__(self, loaded):
        self.batch = DecodeBatch(loaded)
        self.names: list[str] = []
        self.logits: dict[str, list[torch.Tensor]] = {}

    def join(self, name: str, prompt_ids: list[int]) -> None:
        self.logits[name] = [self.batch.prefill(prompt_ids, None)]
        self.names.append(name)
        self.batch.set_next_token(len(self.names) - 1, int(self.logits[name][-1].argmax()))

    def step(self, times: int = 1) -> None:
        for _ in range(times):
            step_logits = self.batch.step()
            for row, name in enumerate(self.names):
                self.logits[name].append(step_logits[row])
                self.batch.set_next_token(row, int(step_logits[row].argmax()))

    def leave(self, name: str) -> None:
        keep = [row for row, other in enumerate(self.names) if other != name]
        self.batch.keep_rows(keep)
        self.names.remove(name)

    def stacked(self, name: str) -> torch.Tensor:
        return torch.stack(self.logits[name])


def test_it_gives_each_row_its_solo_logits_while_rows_join_and_leave(tiny_loaded, prompts):
    """Left padding, re-padding on a longer join and trimming on a leave change nothing."""
    rows = Rows(tiny_loaded)
    rows.join("medium", prompts["medium"])
    rows.step(3)
    rows.join("short", prompts["short"])  # shorter than the running row: it is padded
    rows.step(2)
    rows.join("long", prompts["long"])  # longer than everyone: the others are re-padded
    rows.step(4)
    rows.leave("long")  # the longest row leaves: shared padding is trimmed
    rows.step(3)
    rows.leave("medium")
    rows.step(2)

    assert_same_logits(rows.stacked("short"), solo_run(tiny_loaded, prompts["short"], 11))
    assert_same_logits(rows.stacked("medium"), solo_run(tiny_loaded, prompts["medium"], 12))
    assert_same_logits(rows.stacked("long"), solo_run(tiny_loaded, prompts["long"], 4))


def test_it_trims_padding_no_row_needs_after_a_leave(tiny_loaded, prompts):
    """Once the longest row leaves, the cache is as long as the longest remaining row."""
    rows = Rows(tiny_loaded)
    rows.join("short", prompts["short"])
    rows.join("long", prompts["long"])
    rows.step()
    rows.leave("long")
    batch = rows.batch
    assert batch.size == 1
    assert batch.attention_mask.shape[1] == batch.lengths[0] == len(prompts["short"]) + 1
    assert batch.cache.get_seq_length() == batch.attention_mask.shape[1]
    assert bool(batch.attention_mask.all())


def test_it_starts_over_after_every_row_left(tiny_loaded, prompts):
    """An emptied batch accepts new rows, which again match their solo run."""
    rows = Rows(tiny_loaded)
    rows.join("long", prompts["long"])
    rows.step(2)
    rows.leave("long")
    assert rows.batch.size == 0 and rows.batch.cache is None
    rows.join("short", prompts["short"])
    rows.step(3)
    assert_same_logits(rows.stacked("short"), solo_run(tiny_loaded, prompts["short"], 3))


def test_it_matches_a_plain_forward_pass(tiny_loaded, prompts):
    """The incremental logits equal one full forward pass over prompt + generated tokens."""
    solo = solo_run(tiny_loaded, prompts["medium"], 5)
    generated = solo.argmax(dim=-1)[:-1].tolist()
    full = torch.tensor([prompts["medium"] + generated])
    with torch.inference_mode():
        reference = tiny_loaded.model(full).logits[0, len(prompts["medium"]) - 1 :]
    assert_same_logits(solo, reference)
