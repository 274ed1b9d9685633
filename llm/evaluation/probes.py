"""Teacher-forced probes for degeneration that greedy decoding can miss.

Greedy replies of a small model sit on near-ties (SmolLM2-135M's top two
first tokens often differ by a few percent), so a candidate may have learnt
to like empty or looping replies without yet producing one. Scoring fixed
degenerate continuations under parent and candidate measures that directly:
the empty reply, and the parent's own reply said twice more.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from llm.evaluation.generation import Reply

EMPTY, LOOP = "empty", "loop"


def degenerate_probes(
    tokenizer: PreTrainedTokenizerBase,
    prompt_ids: Sequence[list[int]],
    replies: Sequence[Reply],
    stops: set[int],
) -> dict[str, list[tuple[list[int], list[int]]]]:
    """(context, continuation) sequences per probe kind.

    ``empty`` continues the prompt with the stop token at once; ``loop``
    continues the parent's finished reply with two more copies of it instead of stopping.
    """
    stop = min(stops)
    newline = tokenizer.encode("\n", add_special_tokens=False)
    probes: dict[str, list[tuple[list[int], list[int]]]] = {EMPTY: [], LOOP: []}
    for head, reply in zip(prompt_ids, replies, strict=True):
        probes[EMPTY].append((list(head), [stop]))
        if reply.finished and reply.token_ids:
            body = list(reply.token_ids)
            probes[LOOP].append((list(head) + body, (newline + body) * 2 + [stop]))
    return probes
