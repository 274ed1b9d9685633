"""Sampling settings: validated once, at the edge, with errors a person can read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from transformers import LogitsProcessor

MAX_NEW_TOKENS_LIMIT = 4096
# A reply may not repeat a run of this many of its own tokens (0: no rule). Chosen by
# benchmarks/loops.py (docs/training.md): it ends greedy loops without changing how
# long or how short answers are, as a repetition penalty did. Serving and the gate
# both apply it, so the gate judges what users get.
NO_REPEAT_NGRAM_SIZE = 10


class InvalidSampling(ValueError):
    """A sampling setting is out of range; ``field`` names which one."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SamplingParams:
    """How to pick each next token. ``temperature == 0`` means greedy."""

    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 512
    seed: int | None = None
    no_repeat_ngram_size: int = NO_REPEAT_NGRAM_SIZE

    def __post_init__(self) -> None:
        _check_number("temperature", self.temperature, 0.0, 2.0)
        _check_number("top_p", self.top_p, 0.0, 1.0, low_inclusive=False)
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise InvalidSampling("max_new_tokens", "Maximum reply length must be a whole number.")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise InvalidSampling(
                "max_new_tokens",
                f"Maximum reply length must be between 1 and {MAX_NEW_TOKENS_LIMIT} tokens.",
            )
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise InvalidSampling("seed", "Seed must be a whole number.")
        size = self.no_repeat_ngram_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidSampling("no_repeat_ngram_size", "The n-gram block is a whole number ≥ 0.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SamplingParams:
        known = {key: values[key] for key in cls.__dataclass_fields__ if key in values}
        return cls(**known)


def _check_number(
    field: str, value: object, low: float, high: float, low_inclusive: bool = True
) -> None:
    label = _LABELS.get(field, field)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidSampling(field, f"{label} must be a number.")
    too_low = value < low if low_inclusive else value <= low
    if too_low or value > high or value != value:
        if low_inclusive:
            raise InvalidSampling(field, f"{label} must be between {low:g} and {high:g}.")
        raise InvalidSampling(field, f"{label} must be more than {low:g} and at most {high:g}.")


# How the settings panel names each setting, for messages a person reads.
_LABELS = {"temperature": "Temperature", "top_p": "Top-p"}


def repeating_tokens(reply_ids: Sequence[int], size: int) -> list[int]:
    """The tokens that would make the reply repeat a run of ``size`` of its own tokens.

    Only the reply counts, not the prompt: an answer may quote its documents or the
    question word for word; what it may not do is say the same thing twice over.
    """
    if size <= 0 or len(reply_ids) < size:
        return []
    head = list(reply_ids[len(reply_ids) - size + 1 :])
    first = head[0] if head else None
    return sorted(
        {
            reply_ids[start + size - 1]
            for start in range(len(reply_ids) - size + 1)
            if (first is None or reply_ids[start] == first)
            and list(reply_ids[start : start + size - 1]) == head
        }
    )


class ReplyNGramBlock(LogitsProcessor):
    """``repeating_tokens`` for transformers' ``generate`` (the gate's replies), where
    each row's reply starts after ``prompt_width`` tokens (prompts left-padded)."""

    def __init__(self, size: int, prompt_width: int):
        self.size = size
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row, ids in enumerate(input_ids[:, self.prompt_width :].tolist()):
            banned = repeating_tokens(ids, self.size)
            if banned:
                scores[row, banned] = -float("inf")
        return scores


def pick_token(
    logits: torch.Tensor,
    params: SamplingParams,
    generator: torch.Generator | None,
    reply_ids: Sequence[int] = (),
) -> int:
    """Choose the next token from one row of logits (shape ``[vocab]``), after the
    reply's ``reply_ids`` so far."""
    banned = repeating_tokens(reply_ids, params.no_repeat_ngram_size)
    if banned:
        logits = logits.clone()
        logits[banned] = -float("inf")
    if params.greedy:
        return int(torch.argmax(logits))
    logits = logits.float()
    # Shift the best logit to 0 before dividing: a tiny temperature then sends the
    # others to -inf instead of overflowing to inf - inf = nan in the softmax.
    probs = torch.softmax((logits - logits.max()) / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p (always >= 1 token).
        outside = cumulative - sorted_probs >= params.top_p
        sorted_probs[outside] = 0.0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    if generator is not None:
        # A seeded generator lives on the CPU; multinomial refuses one on another device.
        probs = probs.to(generator.device)
    choice = torch.multinomial(probs, 1, generator=generator)
    return int(choice)
