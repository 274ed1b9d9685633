"""A version's greedy replies from llama.cpp (the Q4_1 file, or its F16 copy, + GGUF LoRA)
and transformers (fp32 + PEFT).

The two engines' logits differ by quantisation noise (tests/llm_tests/test_gguf_lora.py),
so a greedy reply can only part where the top two tokens were nearly tied. Both
engines here are driven directly, the same token ids in, greedy out, so what is
compared is the model and its converted adapter, not either engine's plumbing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from llm.engine.gguf_lora import adapter_to_gguf
from llm.evaluation.prompts import DEFAULT_REGRESSION_PROMPTS
from tests.llm_tests.test_gguf_lora import llama_cpp_model, random_peft_adapter

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning"),
]

# Prompts on which the base model's greedy reply wins every token by a clear margin.
PROMPTS = DEFAULT_REGRESSION_PROMPTS
MAX_NEW_TOKENS = 24
# Half test_gguf_lora's: replies change (the top token at ~1 position in 8) but stay sane.
LORA_B_STD = 0.03


@dataclass(frozen=True)
class Parting:
    """Where two greedy replies to one prompt first differ."""

    prompt: str
    position: int  # index of the first differing token of the reply
    margin: float  # transformers' top-1 minus top-2 logit there


@dataclass(frozen=True)
class Comparison:
    replies: int
    partings: list[Parting]

    @property
    def agreement(self) -> float:
        return 1 - len(self.partings) / self.replies


def transformers_greedy(peft_model, prompts: list[list[int]], stop: int):
    """Greedy replies in one left-padded batch, with the logits of every step."""
    import torch

    width = max(len(ids) for ids in prompts)
    padded = torch.tensor([[stop] * (width - len(ids)) + ids for ids in prompts])
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts])
    with torch.no_grad():
        out = peft_model.generate(
            input_ids=padded,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=MAX_NEW_TOKENS,
            eos_token_id=stop,
            pad_token_id=stop,
            output_logits=True,
            return_dict_in_generate=True,
        )
    replies = [_cut(row[width:].tolist(), stop) for row in out.sequences]
    logits = torch.stack(out.logits, dim=1).numpy()  # (prompt, step, vocab)
    return replies, logits


def llama_cpp_greedy(prompts: list[list[int]], stop: int, lora, path) -> list[list[int]]:
    model = llama_cpp_model(lora, path=path)
    replies = []
    try:
        for ids in prompts:
            model.reset()
            model.eval(ids)
            reply = []
            while len(reply) < MAX_NEW_TOKENS:
                token = int(np.argmax(model.scores[model.n_tokens - 1]))
                reply.append(token)
                if token == stop:
                    break
                model.eval([token])
            replies.append(_cut(reply, stop))
    finally:
        model.close()
    return replies


def _cut(tokens: list[int], stop: int) -> list[int]:
    return tokens[: tokens.index(stop) + 1] if stop in tokens else tokens


def compare(ours, theirs, logits, prompts: tuple[str, ...]) -> Comparison:
    partings = []
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a == b:
            continue
        position = next(
            (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
        )
        ordered = np.sort(logits[index, position])
        partings.append(Parting(prompts[index], position, float(ordered[-1] - ordered[-2])))
    return Comparison(replies=len(ours), partings=partings)


@pytest.fixture(scope="module", params=["file", "f16"])
def weights(request) -> str:
    """LLAMACPP_WEIGHTS: the Q4_1 file as it is, or its F16 copy."""
    return request.param


@pytest.fixture(scope="module")
def comparisons(smollm2_dir, tmp_path_factory, weights) -> dict[str, Comparison]:
    pytest.importorskip("llama_cpp")
    import torch
    from transformers import AutoTokenizer

    from llm.engine.llamacpp_model import served_gguf

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("parity-lora")
    peft_model = random_peft_adapter(smollm2_dir, folder, std=LORA_B_STD)
    gguf = adapter_to_gguf(folder)
    served = served_gguf("smollm2", tmp_path_factory.mktemp("parity-weights"), weights)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompts = [
        list(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                tokenize=True,
                return_dict=False,
            )
        )
        for prompt in PROMPTS
    ]
    result = {}
    for name, lora in (("base", None), ("version", gguf)):
        if lora is None:
            with peft_model.disable_adapter():
                ours, logits = transformers_greedy(peft_model, prompts, stop)
        else:
            ours, logits = transformers_greedy(peft_model, prompts, stop)
        theirs = llama_cpp_greedy(prompts, stop, lora, served)
        result[name] = compare(ours, theirs, logits, PROMPTS)
    return result


# Measured 2026-12-05 on the ten regression prompts, 24 tokens. The Q4_1 file: the
# base's replies were transformers' on 7 of 10, the version's on 7 of 10 too (short of
# the nine in ten issue #22 hoped for). Its F16 copy: 9 of 10 and 10 of 10. Q4_1's
# matrix products quantise the activations to 8 bits; F16 keeps 11 bits of both.
AGREEMENT = {"file": 0.6, "f16": 0.9}


def test_most_greedy_replies_are_the_same_token_for_token(comparisons, weights):
    figures = {name: comparison.agreement for name, comparison in comparisons.items()}
    partings = {
        name: [(p.prompt, p.position, round(p.margin, 3)) for p in comparison.partings]
        for name, comparison in comparisons.items()
    }
    print(f"\n{weights}: agreement {figures}\npartings {partings}")
    assert figures["version"] >= AGREEMENT[weights], partings
    assert figures["base"] >= AGREEMENT[weights], partings


def test_replies_part_only_where_the_top_two_tokens_were_nearly_tied(comparisons):
    """Quantisation noise is ~0.3 logits RMS: a reply may part where the top two were
    closer than that, never where one token clearly led."""
    for comparison in comparisons.values():
        assert all(parting.margin < 0.5 for parting in comparison.partings), comparison
