"""The gate's generated replies, written by a serving engine.

Where the model has a GGUF file, users are answered by the llama.cpp engine; the
gate then generates its regression and held-out replies with that same engine
(the same weights, quantisation, sampler and n-gram rule), so what it judges is
what users get. ``transformers_writer`` is the fallback for a model with no GGUF
(and what the tiny test model uses).

A writer takes a gate adapter name (``None``: the base model), prompts as chat
messages, and sampling, and returns one :class:`Reply` per prompt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import torch

from llm.engine.base import Engine, EngineError, Finished, FinishReason, GenerationRequest, Token
from llm.evaluation.generation import Reply, generated_replies
from llm.evaluation.scoring import ScoringModel, prompt_ids
from llm.sampling import SamplingParams
from llm.training.datasets import Message


class ReplyWriter(Protocol):
    def __call__(
        self,
        adapter: str | None,
        prompts: Sequence[list[Message]],
        max_new_tokens: int,
        *,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
    ) -> list[Reply]: ...


def transformers_writer(scoring: ScoringModel, batch_size: int = 16) -> ReplyWriter:
    """Replies from the gate's own transformers model (``generated_replies``)."""

    def write(adapter, prompts, max_new_tokens, *, temperature=0.0, top_p=1.0, seed=0):
        encoded = [prompt_ids(scoring.tokenizer, prompt) for prompt in prompts]
        return generated_replies(
            scoring,
            adapter,
            encoded,
            max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            batch_size=batch_size,
        )

    return write


def engine_writer(
    engine: Engine, adapters: Mapping[str, str | None], decode: Callable[[list[int]], str]
) -> ReplyWriter:
    """Replies from ``engine``, all prompts of a call at once (one batch of conversations).

    ``adapters`` maps the gate's names to PEFT adapter folders; the engine loads each
    as the version named by its folder (llama.cpp: converted to a GGUF LoRA once).
    A sampled prompt ``i`` draws with seed ``seed + i`` for every adapter, so the
    parent's and the candidate's replies differ by their weights, not by luck.
    """

    def write(adapter, prompts, max_new_tokens, *, temperature=0.0, top_p=1.0, seed=0):
        path = adapters.get(adapter) if adapter else None
        requests = [
            GenerationRequest(
                messages=[dict(message) for message in prompt],
                sampling=SamplingParams(
                    temperature=temperature,
                    top_p=top_p,
                    max_new_tokens=max_new_tokens,
                    seed=seed + index,
                ),
                version=path,
                adapter_path=path,
                return_logits=True,
            )
            for index, prompt in enumerate(prompts)
        ]
        return asyncio.run(_all(engine, requests, decode))

    return write


async def _all(
    engine: Engine, requests: list[GenerationRequest], decode: Callable[[list[int]], str]
) -> list[Reply]:
    await engine.wait_ready()
    return list(await asyncio.gather(*(_one(engine, request, decode) for request in requests)))


async def _one(
    engine: Engine, request: GenerationRequest, decode: Callable[[list[int]], str]
) -> Reply:
    token_ids: list[int] = []
    margins: list[float] = []
    async for event in engine.stream(request):
        if isinstance(event, Token):
            token_ids.append(event.token_id)
            top2 = torch.softmax(event.logits.float(), dim=-1).topk(2).values
            margins.append(float(top2[0] - top2[1]))
        elif isinstance(event, Finished):
            if event.finish_reason not in (FinishReason.STOP, FinishReason.LENGTH):
                raise EngineError(
                    f"the gate's reply ended with {event.finish_reason}: {event.error}"
                )
            return Reply(
                text=decode(token_ids),
                token_ids=tuple(token_ids),
                finished=event.finish_reason is FinishReason.STOP,
                # The stop token's own step sends no token, so its margin is not in here.
                min_margin=min(margins, default=1.0),
            )
    raise EngineError("the engine ended a reply without finishing it")
