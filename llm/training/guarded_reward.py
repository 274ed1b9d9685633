"""The reward online RL optimises: the reward model's score, guarded against gaming.

A reward model trained on a few dozen pairs has never seen a looping, empty or
markup-leaking reply, so it may score one highly, and RL finds such replies
fast (measured: RLOO turned "What is the capital of Greece?" into a loop in 8
steps). A broken reply therefore scores below every sound reply in its batch,
whatever the model says, by the same rules the gate uses (llm.text_rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm.text_rules import leaks_chat_format, repetition_share
from llm.training.models import RewardScorer


class GuardedReward:
    """A TRL reward function: ``reward(prompts=…, completions=…, completion_ids=…)``."""

    __name__ = "guarded_reward"  # TRL names each reward function in its logs

    def __init__(
        self,
        reward_dir: str | Path,
        *,
        enabled: bool = True,
        penalty: float = 1.0,
        repetition_limit: float = 0.5,
        max_ngram: int = 4,
        min_tokens: int = 8,
    ):
        self.scorer = RewardScorer(reward_dir)
        self.enabled = enabled
        self.penalty = penalty
        self.repetition_limit = repetition_limit
        self.max_ngram = max_ngram
        self.min_tokens = min_tokens

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]],
        **_: Any,
    ) -> list[float]:
        conversations = [
            _messages(prompt) + _messages(completion, "assistant")
            for prompt, completion in zip(prompts, completions, strict=True)
        ]
        scores = self.scorer.scores(conversations)
        broken = [
            self.broken(_text(completion), ids)
            for completion, ids in zip(completions, completion_ids, strict=True)
        ]
        sound = [score for score, bad in zip(scores, broken, strict=True) if not bad]
        floor = min(sound or scores) - self.penalty
        return [floor if bad else score for score, bad in zip(scores, broken, strict=True)]

    def broken(self, text: str, token_ids: Sequence[int]) -> bool:
        """Empty, looping (one n-gram covers most of it) or leaking chat markup."""
        if not self.enabled:
            return False
        if not text.strip() or leaks_chat_format(text):
            return True
        ids = list(token_ids)
        return (
            len(ids) >= self.min_tokens
            and repetition_share(ids, self.max_ngram) >= self.repetition_limit
        )


def _messages(value: Any, role: str = "user") -> list[dict]:
    """TRL passes conversational prompts and completions as message lists, plain ones as text."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return [dict(message) for message in value]


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content") or "" for message in completion)
