"""Model versions on llama.cpp: a context per version, each with its LoRA adapter.

A llama.cpp context carries one adapter set, and changing it re-plans the
context's compute graph, so each version served gets a context of its own
(the base model one without adapter) and a step decodes each context's rows
in turn. A version's adapter is the GGUF LoRA beside its PEFT files
(``adapter_model.gguf``), written from them on first use if it is missing.
Unused versions are freed, context and adapter, least recently used first.
"""

from __future__ import annotations

from pathlib import Path

import llama_cpp

from llm.engine.base import EngineError
from llm.engine.gguf_lora import ensure_gguf_lora
from llm.engine.llamacpp_model import LlamaContext, LlamaModel
from llm.engine.versions import AdapterRegistry


class LlamaVersions(AdapterRegistry):
    def __init__(
        self,
        model: LlamaModel,
        cells: int,
        sequences: int,
        max_loaded: int = 4,
        kept: int | None = None,
    ):
        super().__init__(model.name, model.stop_ids, max_loaded)
        self.model = model
        self.cells = cells
        self.sequences = sequences
        self.kept = kept
        self.contexts: dict[str | None, LlamaContext] = {None: self._new_context(None)}
        self._adapter_pointers: dict[str, llama_cpp.llama_adapter_lora_p] = {}

    def context(self, adapter: str | None) -> LlamaContext:
        return self.contexts[adapter]

    def _attach(self, name: str, path: str) -> None:
        gguf = _gguf_lora(path, self.model.path)
        pointer = llama_cpp.llama_adapter_lora_init(self.model.pointer, str(gguf).encode())
        if not pointer:
            raise EngineError(f"llama.cpp could not load the adapter of {name!r} ({gguf})")
        try:
            self.contexts[name] = self._new_context(pointer)
        except Exception:
            llama_cpp.llama_adapter_lora_free(pointer)
            raise
        self._adapter_pointers[name] = pointer

    def _detach(self, name: str) -> None:
        # Rows still naming it end before the next step (the engine sees it gone).
        self.contexts.pop(name).close()
        llama_cpp.llama_adapter_lora_free(self._adapter_pointers.pop(name))

    def close(self) -> None:
        for name in list(self.adapters):
            self.unload(name)
        self.contexts.pop(None).close()

    def _new_context(self, adapter: llama_cpp.llama_adapter_lora_p | None) -> LlamaContext:
        return LlamaContext(self.model, self.cells, self.sequences, adapter, kept=self.kept)


def _gguf_lora(adapter_dir: str, base_gguf: str) -> Path:
    """The adapter's GGUF LoRA file, converted from its PEFT files when missing or older."""
    if not Path(adapter_dir).is_dir():
        raise EngineError(f"no adapter folder at {adapter_dir}")
    return ensure_gguf_lora(adapter_dir, base_gguf=base_gguf)
