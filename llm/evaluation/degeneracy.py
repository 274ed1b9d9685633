"""Spotting broken replies: empty, looping, cut off at the length cap, leaking chat markup."""

from __future__ import annotations

from collections.abc import Sequence

from llm.evaluation.generation import Reply
from llm.evaluation.thresholds import GateThresholds
from llm.text_rules import leaks_chat_format, repetition_share


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


def degenerate_share(replies: Sequence[Reply], thresholds: GateThresholds) -> float:
    if not replies:
        return 0.0
    return sum(1 for reply in replies if degeneracy_reasons(reply, thresholds)) / len(replies)
