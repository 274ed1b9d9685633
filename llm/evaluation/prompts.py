"""Fixed regression prompts: requests the base model answers briefly, correctly and decisively.

Greedy replies of a small model often hang on near-ties: SmolLM2-135M picks
the first word of "What is the capital of France?" by a 0.01 probability
margin, and the choice to stop after a one-line answer is often a coin flip
too, so any candidate, however slightly changed, "breaks" such prompts. On
each prompt below the base model's greedy reply wins every token by a clear
margin (top-1 minus top-2 probability >= 0.08, most >= 0.3), so a reply that
changes here changed for a reason. ``GateReport.metrics`` counts the parent's
fragile prompts for custom lists.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm.training.datasets import Message

DEFAULT_REGRESSION_PROMPTS: tuple[str, ...] = (
    "What is the plural of mouse?",
    "What is the plural of child?",
    "What is the plural of tooth?",
    "What is the capital of Russia?",
    "What is the capital of Greece?",
    "What is the capital of England?",
    "What is the last month of the year?",
    "List the months of the year.",
)


def as_messages(prompt: str | Sequence[Message]) -> list[Message]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]
