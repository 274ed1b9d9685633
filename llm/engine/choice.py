"""Which in-process engine runs a model, and building it: one answer for the web
processes, the inference workers and the gate (``INFERENCE_ENGINE``).

``llamacpp`` serves a GGUF file directly; ``transformers`` a Hugging Face folder
or hub id; ``auto`` takes llama.cpp when the model has a GGUF file (the embedded
model, or a path ending in ``.gguf``) and transformers otherwise.
"""

from __future__ import annotations

from pathlib import Path

from llm.engine.llamacpp import LlamaCppEngine
from llm.engine.llamacpp_model import check_weights, load_llama_model
from llm.engine.local import LocalEngine
from llm.engine.threaded import ThreadedEngine
from llm.loading import ModelNotFound, gguf_file_for, load_model

ENGINES = ("auto", "llamacpp", "transformers")


def engine_kind(choice: str, model: str) -> str:
    """``llamacpp`` or ``transformers``: what serves ``model`` when ``choice`` is asked."""
    if choice not in ENGINES:
        raise ValueError(f"the engine must be one of {', '.join(ENGINES)}, not {choice!r}")
    if choice != "auto":
        return choice
    try:
        return "llamacpp" if gguf_file_for(model) else "transformers"
    except ModelNotFound:  # the embedded model is missing: transformers says so on load
        return "transformers"


def in_process_engine(
    model: str,
    *,
    choice: str,
    cache_dir: str | Path,
    device: str | None = None,
    threads: int = 0,
    max_batch_size: int = 16,
    weights: str = "file",
) -> ThreadedEngine:
    """The engine for ``model`` in this process (``weights``: llama.cpp's, as
    ``LLAMACPP_WEIGHTS``). Nothing loads until it starts."""
    if engine_kind(choice, model) == "llamacpp":
        check_weights(weights)
        return LlamaCppEngine(
            lambda: load_llama_model(model, cache_dir, threads=threads, weights=weights),
            max_batch_size=max_batch_size,
        )
    return LocalEngine(
        lambda: load_model(model, cache_dir, device, threads=threads),
        max_batch_size=max_batch_size,
    )
