"""Rules that spot a broken reply from its text or tokens alone: loops and leaked markup.

Shared by the gate (llm.evaluation.degeneracy) and the online-RL reward guard
(llm.training.guarded_reward), so a reply the gate calls broken is one RL
never learns to write.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

# Markup of ChatML-style templates (SmolLM2, Qwen, ...) and common role headers.
CHAT_MARKUP = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>")
ROLE_HEADER = re.compile(r"^\s*(system|user|assistant)\s*:?\s*$", re.IGNORECASE | re.MULTILINE)


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
