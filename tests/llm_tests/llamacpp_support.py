"""Starting the llama.cpp engine on the embedded GGUF, and bare llama.cpp to compare with."""

from __future__ import annotations

import asyncio
from pathlib import Path
from unittest import mock

import llama_cpp
import numpy as np

from llm.engine.llamacpp import LlamaCppEngine
from llm.engine.llamacpp_model import load_llama_model
from tests.llm_tests.streams import assert_same_logits, stacked_logits, token_ids

# A small window keeps long-prompt tests fast; the real one is 8192.
TEST_WINDOW = 256


def start_llamacpp_engine(
    cache_dir: Path, window: int | None = TEST_WINDOW, weights: str = "file", **options
) -> LlamaCppEngine:
    """A running engine on the embedded GGUF with one thread, ready to serve.

    The engine's own tests run on the Q4_1 file as it is: llama.cpp has one Q4_1
    kernel for a token and for a prompt, so served logits equal bare llama.cpp's
    exactly. An F16 model (LLAMACPP_WEIGHTS' default) takes a prompt through a
    matrix multiply and a token through dot products, ~0.03 apart; the weights'
    own tests cover it (test_llamacpp_weights.py, the learning tests)."""

    def load():
        model = load_llama_model("smollm2", cache_dir, threads=1, weights=weights)
        if window:
            model.context_window = window
        return model

    options.setdefault("context_cells", 2048)
    engine = LlamaCppEngine(load, **options)
    asyncio.run(engine.wait_ready())
    return engine


def bare_llama(path: str, lora: Path | None = None) -> llama_cpp.Llama:
    """llama-cpp-python's own ``Llama`` on the GGUF at ``path`` (with the GGUF LoRA
    ``lora`` applied, if given) and the engine's settings: the reference."""
    default = llama_cpp.llama_cpp.llama_model_default_params

    def without_extra_buffers():
        # As the engine loads it: AMX buffers crash on this project's machines.
        params = default()
        params.use_extra_bufts = False
        return params

    with mock.patch.object(
        llama_cpp.llama_cpp, "llama_model_default_params", without_extra_buffers
    ):
        return llama_cpp.Llama(
            model_path=path,
            n_ctx=2048,
            n_threads=1,
            flash_attn=True,
            lora_path=str(lora) if lora else None,
            logits_all=True,
            verbose=False,
        )


def reference_logits(llama: llama_cpp.Llama, prompt: list[int], reply: list[int]) -> np.ndarray:
    """Bare llama.cpp's logits for each reply token, prompt and reply in one pass."""
    llama.reset()
    llama.eval(prompt + reply[:-1])
    return np.array(llama.scores[len(prompt) - 1 : len(prompt) - 1 + len(reply)])


# What another conversation's logits differ by (~20 measured); llama.cpp's own rounding
# as sequences come and go in the shared cache stays under ~1.5.
BATCH_NOISE = 3.0


def assert_served_as_alone(together: list, solo: list, prompt_alone: bool = True) -> None:
    """A reply decoded beside others is the one it gets alone: the first token's logits
    exactly (within the batch noise too if its prompt shared a decode call with another
    prompt), later ones within llama.cpp's batch noise until the greedy replies part."""
    batched, alone = token_ids(together), token_ids(solo)
    parted = next(
        (
            index
            for index, pair in enumerate(zip(batched, alone, strict=False))
            if pair[0] != pair[1]
        ),
        min(len(batched), len(alone)),
    )
    compared = min(parted + 1, len(batched), len(alone))
    first = 1e-3 if prompt_alone else BATCH_NOISE
    assert_same_logits(stacked_logits(together)[:1], stacked_logits(solo)[:1], atol=first)
    gap = (stacked_logits(together)[:compared] - stacked_logits(solo)[:compared]).abs().max()
    assert gap < BATCH_NOISE, f"logits {gap:.2f} apart before the replies part"
