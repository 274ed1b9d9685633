"""The in-process transformers engine: one thread owns the model and runs a dynamic batch.

The engine thread, its inbox and the way rows join and leave between steps are
shared with the llama.cpp engine (llm.engine.threaded); this module gives them
a transformers model, PEFT adapters as versions (llm.engine.versions) and a
batch with one shared KV cache (llm.engine.batch).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llm.engine.batch import DecodeBatch
from llm.engine.threaded import Job, ThreadedEngine
from llm.engine.versions import VersionRegistry
from llm.loading import LoadedModel
from llm.sampling import pick_token


class LocalEngine(ThreadedEngine):
    """Serves many conversations at once from one transformers model in this process."""

    loaded: LoadedModel | None
    versions: VersionRegistry | None

    def __init__(self, load: Callable[[], LoadedModel], max_batch_size: int = 16):
        super().__init__(max_batch_size)
        self._load = load

    def _open(self) -> None:
        self.loaded = self._load()
        self.versions = VersionRegistry(self.loaded)

    def _new_batch(self) -> DecodeBatch:
        return DecodeBatch(self.loaded)

    def _pick(self, logits: torch.Tensor, job: Job) -> int:
        return pick_token(logits, job.request.sampling, job.generator, job.token_ids)
