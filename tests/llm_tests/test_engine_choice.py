"""Which in-process engine runs a model (llm.engine.choice, INFERENCE_ENGINE)."""

from __future__ import annotations

import pytest

from llm.engine.choice import engine_kind, in_process_engine
from llm.engine.llamacpp import LlamaCppEngine
from llm.engine.local import LocalEngine


def test_auto_serves_a_gguf_with_llamacpp_and_a_folder_with_transformers(tiny_model_dir, tmp_path):
    assert engine_kind("auto", "smollm2") == "llamacpp"  # the embedded model's GGUF file
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    assert engine_kind("auto", str(gguf)) == "llamacpp"
    assert engine_kind("auto", str(tiny_model_dir)) == "transformers"
    assert engine_kind("auto", "HuggingFaceTB/SmolLM2-360M-Instruct") == "transformers"


def test_a_named_engine_is_taken_as_named_and_an_unknown_one_refused():
    assert engine_kind("transformers", "smollm2") == "transformers"
    assert engine_kind("llamacpp", "smollm2") == "llamacpp"
    with pytest.raises(ValueError, match="auto, llamacpp, transformers"):
        engine_kind("vllm", "smollm2")


def test_it_builds_the_engine_it_names_without_loading_anything(tiny_model_dir, model_cache_dir):
    built = [
        in_process_engine(model, choice="auto", cache_dir=model_cache_dir)
        for model in ("smollm2", str(tiny_model_dir))
    ]
    assert isinstance(built[0], LlamaCppEngine) and isinstance(built[1], LocalEngine)
    assert all(engine.loaded is None for engine in built)
