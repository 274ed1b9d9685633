"""LLAMACPP_WEIGHTS: llama.cpp serving the embedded GGUF as it is, or an F16 (the default)
or Q8_0 copy."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
import torch

from llm.engine.choice import in_process_engine
from llm.engine.llamacpp_model import served_gguf
from llm.loading import embedded_gguf_path
from llm.prompting import encode_chat
from tests.llm_tests.llamacpp_support import bare_llama, reference_logits, start_llamacpp_engine
from tests.llm_tests.streams import (
    ask,
    assert_same_logits,
    collect,
    stacked_logits,
    started,
    token_ids,
)

pytestmark = pytest.mark.slow  # the real model


def test_the_default_is_the_f16_copy(settings):
    """The replies closest to the model training changes (docs/operating.md's table)."""
    assert settings.LLAMACPP_WEIGHTS == "f16"


def test_the_file_is_served_as_it_is(tmp_path):
    assert served_gguf("smollm2", tmp_path) == embedded_gguf_path()
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_an_unknown_choice_is_refused_before_anything_loads(model_cache_dir):
    with pytest.raises(ValueError, match="file, q8_0, f16"):
        in_process_engine("smollm2", choice="llamacpp", cache_dir=model_cache_dir, weights="q4")


def test_a_copy_is_written_once_in_the_chosen_type(tmp_path):
    """Every matrix of the F16 copy is F16 (norms stay F32); a second load reuses it."""
    copy = served_gguf("smollm2", tmp_path, "f16")
    assert copy.parent == tmp_path and copy.name.endswith(".f16.gguf")
    types = {
        tensor.name: tensor.tensor_type
        for tensor in gguf.GGUFReader(copy).tensors
        if len(tensor.shape) == 2 and tensor.name != "token_embd.weight"
    }
    assert types and set(types.values()) == {gguf.GGMLQuantizationType.F16}, types
    written = copy.stat().st_mtime_ns
    assert served_gguf("smollm2", tmp_path, "f16") == copy
    assert copy.stat().st_mtime_ns == written
    assert sorted(path.name for path in tmp_path.iterdir()) == [".convert.lock", copy.name]


# How far served logits may be from bare llama.cpp's, whose reference takes prompt and
# reply in one pass: Q8_0 has one kernel for both; F16 takes a prompt through a matrix
# multiply and a token through dot products (0.03 apart measured).
BARE_TOLERANCE = {"q8_0": 1e-3, "f16": 0.1}


@pytest.fixture(scope="module", params=["f16", "q8_0"])
def retyped_engine(request, smollm2_dir, tmp_path_factory):
    engine = start_llamacpp_engine(tmp_path_factory.mktemp("weights"), weights=request.param)
    yield request.param, engine
    engine.close()


async def test_the_engine_serves_the_copy_with_the_files_tokenizer(retyped_engine):
    """The copy's logits are bare llama.cpp's on that copy, and stay within
    quantisation noise of the file's own (the same model, not another)."""
    weights, engine = retyped_engine
    assert engine.loaded.path.endswith(f".{weights}.gguf")
    events = await collect(engine, ask("What is the capital of France?", 10, return_logits=True))
    prompt = encode_chat(engine.loaded.tokenizer, started(events).prompt_messages)
    reply = token_ids(events)
    served = stacked_logits(events)
    expected = reference_logits(bare_llama(engine.loaded.path), prompt, reply)
    assert_same_logits(served, torch.from_numpy(expected), atol=BARE_TOLERANCE[weights])
    original = reference_logits(bare_llama(str(embedded_gguf_path())), prompt, reply)
    rms = float(np.sqrt(np.mean((expected - original) ** 2)))
    assert 0 < rms < 1.0, rms
