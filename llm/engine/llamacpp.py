"""The llama.cpp engine: the GGUF model served directly, many conversations at once.

The same engine thread, inbox and dynamic batch as the transformers engine
(llm.engine.threaded): rows join and leave between decode steps, events go
back with ``call_soon_threadsafe``. Here a row is a sequence of a llama.cpp
context (llm.engine.llamacpp_batch) and a model version is a context with a
LoRA adapter (llm.engine.llamacpp_versions). Prompts, sampling and the text
sent are the transformers engine's own (``fit_messages``, ``pick_token``,
``_new_text``), so a setting means the same thing on both.

llama.cpp runs its own thread pool (``threads``, one per core by default);
it slows down badly when those cores are also busy with something else.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm.engine.llamacpp_batch import LlamaBatch
from llm.engine.llamacpp_model import LlamaModel
from llm.engine.llamacpp_versions import LlamaVersions
from llm.engine.threaded import Job, ThreadedEngine
from llm.sampling import pick_token

# KV cells of a context, shared by its conversations; at least one whole window.
DEFAULT_CONTEXT_CELLS = 16384


class LlamaCppEngine(ThreadedEngine):
    """Serves many conversations at once from a GGUF model, through llama.cpp."""

    loaded: LlamaModel | None
    versions: LlamaVersions | None

    def __init__(
        self,
        load: Callable[[], LlamaModel],
        max_batch_size: int = 16,
        context_cells: int = DEFAULT_CONTEXT_CELLS,
        max_versions: int = 4,
        kept_conversations: int | None = None,
    ):
        """``kept_conversations``: finished conversations whose cells each context keeps
        for a prompt that begins the same way (default: ``max_batch_size``)."""
        super().__init__(max_batch_size)
        self._load = load
        self.context_cells = context_cells
        self.max_versions = max_versions
        self.kept_conversations = (
            max_batch_size if kept_conversations is None else kept_conversations
        )
        self._batch: LlamaBatch | None = None

    def _open(self) -> None:
        self.loaded = self._load()
        cells = max(self.context_cells, self.loaded.context_window)
        self.versions = LlamaVersions(
            self.loaded,
            cells,
            self.max_batch_size,
            max_loaded=self.max_versions,
            kept=self.kept_conversations,
        )

    def _new_batch(self) -> LlamaBatch:
        self._batch = LlamaBatch(self.versions)
        return self._batch

    def _pick(self, logits: torch.Tensor, job: Job) -> int:
        return pick_token(logits, job.request.sampling, job.generator, job.token_ids)

    def _has_room(
        self, batch: LlamaBatch, rows: list[Job], job: Job, prompt_ids: list[int]
    ) -> bool:
        """Room in its version's KV cache for the whole reply, beside what the rows
        already there may still write (kept conversations are freed for it): a reply
        never runs out of cells half-way."""
        context = self.versions.context(job.adapter)
        limits = [row.request.sampling.max_new_tokens for row in rows]
        need = len(prompt_ids) + job.request.sampling.max_new_tokens
        return batch.make_room(context, limits, need)

    def _release(self) -> None:
        if self._batch is not None:
            self._batch.close()
        if self.versions is not None:
            self.versions.close()
        if self.loaded is not None:
            self.loaded.close()
