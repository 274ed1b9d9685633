"""llama.cpp's running batch: one sequence per conversation, joined and left between steps.

A new row's prompt is decoded alone into a free sequence of its version's
context, which gives its first token; each step then decodes every row's next
token, one ``llama_decode`` per context (per model version), and a finished
row's sequence is removed from the KV cache. Attention only sees a row's own
sequence, so its first token is exactly what it gets alone; later logits move
by rounding (up to ~1.5 measured) as other sequences come and go in the shared
cache, and a greedy reply can part from its solo run where two tokens are
nearly tied. Two prompts are never decoded in one call: that moved both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import llama_cpp
import numpy as np
import torch

from llm.engine.llamacpp_model import LlamaContext
from llm.engine.llamacpp_versions import LlamaVersions


@dataclass
class LlamaRow:
    context: LlamaContext
    sequence: int
    prompt_length: int
    length: int = 0  # tokens in the KV cache
    pending: list[int] = field(default_factory=list)  # fed at the next step


class LlamaBatch:
    def __init__(self, versions: LlamaVersions):
        self.versions = versions
        self.rows: list[LlamaRow] = []
        self._capacity = versions.cells
        self._batch = llama_cpp.llama_batch_init(self._capacity, 0, 1)
        # numpy views of the batch's arrays, to fill them a prompt at a time
        self._tokens, self._positions, self._seq_counts, self._outputs = (
            np.ctypeslib.as_array(array, shape=(self._capacity,))
            for array in (
                self._batch.token,
                self._batch.pos,
                self._batch.n_seq_id,
                self._batch.logits,
            )
        )
        self._seq_counts[:] = 1

    @property
    def size(self) -> int:
        return len(self.rows)

    def prefill(self, prompt_ids: list[int], adapter: str | None) -> torch.Tensor:
        """Decode one prompt alone into a new row; return its last logits."""
        context = self.versions.context(adapter)
        row = LlamaRow(context, context.take_sequence(), len(prompt_ids), pending=list(prompt_ids))
        try:
            logits = self._decode(context, [row])
        except Exception:
            context.release_sequence(row.sequence)
            raise
        self.rows.append(row)
        return torch.from_numpy(logits[0])

    def step(self) -> torch.Tensor:
        """Feed every row its pending token; return next-token logits [rows, vocab]."""
        logits = np.empty((len(self.rows), self.versions.model.vocab_size), dtype=np.float32)
        for context, members in self._by_context().items():
            logits[members] = self._decode(context, [self.rows[index] for index in members])
        return torch.from_numpy(logits)

    def set_next_token(self, row: int, token_id: int) -> None:
        self.rows[row].pending = [token_id]

    def keep_rows(self, rows: list[int]) -> None:
        """Drop every row not in ``rows`` (order preserved); their sequences are freed."""
        kept = set(rows)
        for index, row in enumerate(self.rows):
            if index not in kept:
                row.context.release_sequence(row.sequence)
        self.rows = [self.rows[index] for index in rows]

    def clear(self) -> None:
        self.keep_rows([])

    def close(self) -> None:
        self.clear()
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None

    def reserved(self, context: LlamaContext, max_new_tokens: list[int]) -> int:
        """KV cells the rows of ``context`` may fill in all: prompt plus the reply's
        limit, given each row's ``max_new_tokens`` in batch order."""
        return sum(
            row.prompt_length + limit
            for row, limit in zip(self.rows, max_new_tokens, strict=True)
            if row.context is context
        )

    def _by_context(self) -> dict[LlamaContext, list[int]]:
        groups: dict[LlamaContext, list[int]] = {}
        for index, row in enumerate(self.rows):
            groups.setdefault(row.context, []).append(index)
        return groups

    def _decode(self, context: LlamaContext, rows: list[LlamaRow]) -> np.ndarray:
        """Decode the pending tokens of ``rows`` (all of ``context``) in one call;
        return the logits of each row's last token."""
        total = sum(len(row.pending) for row in rows)
        if total > self._capacity:
            raise ValueError(f"{total} tokens do not fit one decode ({self._capacity})")
        start, outputs = 0, []
        for row in rows:
            end = start + len(row.pending)
            self._tokens[start:end] = row.pending
            self._positions[start:end] = np.arange(row.length, row.length + len(row.pending))
            self._outputs[start:end] = 0
            self._outputs[end - 1] = 1
            for slot in range(start, end):
                self._batch.seq_id[slot][0] = row.sequence
            outputs.append(end - 1)
            start = end
        self._batch.n_tokens = total
        context.decode(self._batch)
        for row in rows:
            row.length += len(row.pending)
            row.pending = []
        return np.stack([context.logits(output) for output in outputs])
