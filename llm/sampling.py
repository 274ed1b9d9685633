"""Sampling settings: validated once, at the edge, with errors a person can read."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

MAX_NEW_TOKENS_LIMIT = 4096


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


def pick_token(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None
) -> int:
    """Choose the next token from one row of logits (shape ``[vocab]``)."""
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
