"""Replies to fixed prompts, greedy or sampled, for comparing a candidate with its parent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import GenerationConfig, LogitsProcessorList

from llm.evaluation.scoring import ScoringModel
from llm.sampling import NO_REPEAT_NGRAM_SIZE, ReplyNGramBlock


@dataclass(frozen=True)
class Reply:
    text: str  # decoded with special tokens kept, so leaked chat markup stays visible
    token_ids: tuple[int, ...]  # generated tokens before the stop token
    finished: bool  # False: it ran into max_new_tokens
    # The smallest top-1 minus top-2 probability over its steps: near 0, a tiny change flips it.
    min_margin: float = 1.0

    @property
    def token_count(self) -> int:
        return len(self.token_ids)

    @property
    def hit_length_cap(self) -> bool:
        return not self.finished


def greedy_replies(
    scoring: ScoringModel,
    adapter: str | None,
    prompts: Sequence[list[int]],
    max_new_tokens: int,
    batch_size: int = 8,
) -> list[Reply]:
    """Greedy continuations of tokenized prompts, in batches (left-padded)."""
    return generated_replies(scoring, adapter, prompts, max_new_tokens, batch_size=batch_size)


@torch.no_grad()
def generated_replies(
    scoring: ScoringModel,
    adapter: str | None,
    prompts: Sequence[list[int]],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 8,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = NO_REPEAT_NGRAM_SIZE,
) -> list[Reply]:
    """Continuations of tokenized prompts; ``temperature`` 0 is greedy.

    ``no_repeat_ngram_size`` is the serving engines' rule (``llm.sampling``: a reply
    never repeats a run of that many of its own tokens), on by default so the gate
    judges what users get; ``repetition_penalty`` is transformers' (1.0: off), kept
    for measuring it against the rule (benchmarks/loops.py).

    Sampling reseeds with ``seed`` first, so two adapters asked in turn draw
    from the same random stream: their replies differ by the weights, not by luck.
    """
    stops = stop_token_ids(scoring)
    sampled = temperature > 0
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sampled,
        **({"temperature": temperature, "top_p": top_p, "top_k": 0} if sampled else {}),
        repetition_penalty=repetition_penalty,
        eos_token_id=sorted(stops),
        pad_token_id=scoring.tokenizer.pad_token_id,
        output_scores=True,
        return_dict_in_generate=True,
    )
    if sampled:
        torch.manual_seed(seed)
    replies: list[Reply] = []
    with scoring.use(adapter):
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            generated, margins = _generate(scoring, batch, config, no_repeat_ngram_size)
            replies.extend(
                _reply(scoring, ids, row, stops)
                for ids, row in zip(generated, margins, strict=True)
            )
    return replies


def stop_token_ids(scoring: ScoringModel) -> set[int]:
    configured = scoring.model.generation_config.eos_token_id
    ids = {configured} if isinstance(configured, int) else set(configured or [])
    if scoring.tokenizer.eos_token_id is not None:
        ids.add(scoring.tokenizer.eos_token_id)
    return ids


def reply_sequence(reply: Reply, stops: set[int]) -> list[int]:
    """The reply's tokens as the model emitted them, stop token included."""
    return list(reply.token_ids) + ([min(stops)] if reply.finished else [])


def _generate(
    scoring: ScoringModel, batch: Sequence[list[int]], config, no_repeat_ngram_size: int
) -> tuple[list[list[int]], list[list[float]]]:
    """Generated ids per row, and per step the top-1 minus top-2 probability."""
    width = max(len(ids) for ids in batch)
    pad = scoring.tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch])
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
    output = scoring.model.generate(
        input_ids=input_ids.to(scoring.device),
        attention_mask=mask.to(scoring.device),
        generation_config=config,
        # The serving engines' rule (llm.sampling.pick_token), on the reply's own tokens.
        logits_processor=LogitsProcessorList([ReplyNGramBlock(no_repeat_ngram_size, width)]),
    )
    top2 = torch.stack(output.scores, dim=1).float().softmax(dim=-1).topk(2, dim=-1).values
    margins = (top2[..., 0] - top2[..., 1]).tolist()
    return [row[width:].tolist() for row in output.sequences], margins


def _reply(
    scoring: ScoringModel, generated: list[int], margins: list[float], stops: set[int]
) -> Reply:
    end = next((index for index, token in enumerate(generated) if token in stops), None)
    tokens = generated if end is None else generated[:end]
    text = scoring.tokenizer.decode(tokens, skip_special_tokens=False)
    steps = margins[: len(tokens) + 1]  # up to and including the stop decision
    return Reply(
        text=text, token_ids=tuple(tokens), finished=end is not None, min_margin=min(steps)
    )
