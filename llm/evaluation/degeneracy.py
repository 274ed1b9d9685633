"""Spotting broken replies: empty, looping, cut off at the length cap, leaking chat markup."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from llm.evaluation.generation import Reply
from llm.evaluation.thresholds import GateThresholds

# Markup of ChatML-style templates (SmolLM2, Qwen, ...) and common role headers.
CHAT_MARKUP = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>")
ROLE_HEADER = re.compile(r"^\s*(system|user|assistant)\s*:?\s*$", re.IGNORECASE | re.MULTILINE)


def degeneracy_reasons(reply: Reply, thresholds: GateThresholds) -> list[str]:
    """Why ``reply`` looks degenerate; an empty list means it looks fine."""
    reasons = []
    if not reply.text.strip():
        reasons.append("empty")
    if reply.hit_length_cap:
        reasons.append("length_cap")
    if len(reply.token_ids) >= thresholds.repetition_min_tokens and (
        repetition_share(reply.token_ids, thresholds.repetition_max_ngram)
        >= thresholds.repetition_share
    ):
        reasons.append("repetition")
    if leaks_chat_format(reply.text):
        reasons.append("chat_format")
    return reasons


def repetition_share(tokens: Sequence[int], max_ngram: int) -> float:
    """The largest share of ``tokens`` covered by repeats of one n-gram, n = 1..max_ngram.

    Natural text stays far below one half; "ok ok ok ..." or a sentence said
    three times in a row comes close to one.
    """
    best = 0.0
    for size in range(1, max_ngram + 1):
        grams = Counter(tuple(tokens[i : i + size]) for i in range(len(tokens) - size + 1))
        if not grams:
            break
        count = grams.most_common(1)[0][1]
        if count > 1:
            best = max(best, min(1.0, count * size / len(tokens)))
    return best


def leaks_chat_format(text: str) -> bool:
    return any(marker in text for marker in CHAT_MARKUP) or bool(ROLE_HEADER.search(text))


def degenerate_share(replies: Sequence[Reply], thresholds: GateThresholds) -> float:
    if not replies:
        return 0.0
    return sum(1 for reply in replies if degeneracy_reasons(reply, thresholds)) / len(replies)
