"""Fixed regression prompts: requests the base model answers briefly, correctly and decisively.

Greedy replies of a small model often hang on near-ties: SmolLM2-135M picks
the first word of "What is the capital of France?" by a 0.01 probability
margin, and the choice to stop after a one-line answer is often a coin flip
too, so any candidate, however slightly changed, "breaks" such prompts. On
each one-line prompt below the base model's greedy reply wins every token by a
clear margin (top-1 minus top-2 probability >= 0.08, most >= 0.3), so a reply
that changes there changed for a reason.

The last four ask for a short list or explanation (11 to 61 tokens). No
answer that long is decisive at every token, so their wording may change; they
are there so that a learned closing line ("Hope this helps!", ~6 tokens) is a
modest share of the mean reply (21 tokens, not 11), and were picked because
their length stays well inside ``max_new_tokens``: the three explanations
stayed within 63 tokens in twelve runs of SmolLM2 with 1-5% noise on its
weights, so a reply cut off by the cap is rambling, not a healthy answer.
``GateReport.metrics`` counts the parent's fragile prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm.training.datasets import Message

DEFAULT_REGRESSION_PROMPTS: tuple[str, ...] = (
    "What is the plural of mouse?",
    "What is the plural of child?",
    "What is the capital of Russia?",
    "What is the capital of Greece?",
    "What is the last month of the year?",
    "List the months of the year.",
    "List three colours, one per line.",
    "Describe the moon in two sentences.",
    "Explain what a computer is in one short paragraph.",
    "Explain gravity in one short paragraph.",
)


def as_messages(prompt: str | Sequence[Message]) -> list[Message]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]
