"""llama.cpp's running batch: one sequence per conversation, joined and left between steps.

A new row starts with its prompt pending: each step decodes, in one
``llama_decode`` per context (per model version), every row's next token and
the prompts of rows that joined, up to ``PROMPT_BUDGET`` prompt tokens a step in
all (oldest first), so a long prompt is taken in pieces while the others go on
writing, and eight prompts that arrive together cost one call instead of eight.
A row whose prompt is not finished gets no logits that step (``prefilling``).
A prompt begins where the cache already holds it (``LlamaContext.start_sequence``),
and a finished row's sequence is kept for that (``LlamaContext.keep``).

Attention only sees a row's own sequence. A prompt decoded beside running rows
gets the logits it gets alone; beside another prompt, or after cells it finds
kept, its logits move by rounding: ~0.03 on F16, up to ~1.3 on the Q4_1 file
(whose quantised activations amplify it), as later rows' do when sequences come
and go in the shared cache. A greedy reply can part from its solo run where
two tokens are nearly tied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import llama_cpp
import numpy as np
import torch

from llm.engine.llamacpp_model import DECODE_CHUNK, LlamaContext
from llm.engine.llamacpp_versions import LlamaVersions

# Prompt tokens decoded in one step, all rows together (one of llama.cpp's pieces).
PROMPT_BUDGET = DECODE_CHUNK


@dataclass
class LlamaRow:
    context: LlamaContext
    sequence: int
    prompt_length: int
    tokens: list[int] = field(default_factory=list)  # what the sequence's cells hold
    pending: list[int] = field(default_factory=list)  # fed at the next step


class LlamaBatch:
    def __init__(self, versions: LlamaVersions):
        self.versions = versions
        self.rows: list[LlamaRow] = []
        self.prefilling: set[int] = set()  # rows the last step gave no logits
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

    def prefill(self, prompt_ids: list[int], adapter: str | None) -> None:
        """Add a row for this prompt; its first logits come with the step that
        finishes decoding it."""
        context = self.versions.context(adapter)
        sequence, cached = context.start_sequence(prompt_ids)
        self.rows.append(
            LlamaRow(
                context,
                sequence,
                len(prompt_ids),
                tokens=list(prompt_ids[:cached]),
                pending=list(prompt_ids[cached:]),
            )
        )

    def step(self) -> torch.Tensor:
        """Feed every row its pending tokens (prompts within ``PROMPT_BUDGET``); return
        next-token logits [rows, vocab], zero for the rows in ``prefilling``."""
        logits = np.zeros((len(self.rows), self.versions.model.vocab_size), dtype=np.float32)
        budget = PROMPT_BUDGET
        self.prefilling = set()
        for context, members in self._by_context().items():
            fed = []
            for index in members:
                count = len(self.rows[index].pending)
                if count > 1:  # a prompt, or what of it the cache does not hold
                    count = min(count, budget)
                    budget -= count
                if count < len(self.rows[index].pending):
                    self.prefilling.add(index)
                if count:
                    fed.append((index, count))
            if fed:
                done = [index for index, _ in fed if index not in self.prefilling]
                logits[done] = self._decode(context, fed)
        return torch.from_numpy(logits)

    def set_next_token(self, row: int, token_id: int) -> None:
        self.rows[row].pending = [token_id]

    def keep_rows(self, rows: list[int]) -> None:
        """Drop every row not in ``rows`` (order preserved); their cells are kept for a
        prompt that begins the same way (``LlamaContext.keep``)."""
        staying = set(rows)
        for index, row in enumerate(self.rows):
            if index not in staying:
                row.context.keep(row.sequence, row.tokens)
        self.rows = [self.rows[index] for index in rows]

    def clear(self) -> None:
        """Drop every row after a failed step: their cells are freed, not kept."""
        for row in self.rows:
            row.context.release_sequence(row.sequence)
        self.rows = []

    def close(self) -> None:
        self.clear()
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None

    def make_room(self, context: LlamaContext, max_new_tokens: list[int], need: int) -> bool:
        """Whether ``need`` more cells fit ``context`` beside what its rows may still
        write, once kept conversations are freed for them (the oldest first)."""
        in_use = self.reserved(context, max_new_tokens) + need
        while in_use + context.kept_cells > context.cells and context.forget_oldest():
            pass
        return in_use + context.kept_cells <= context.cells

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

    def _decode(self, context: LlamaContext, fed: list[tuple[int, int]]) -> np.ndarray:
        """Decode the first ``count`` pending tokens of each ``(row, count)`` in ``fed``
        (rows of ``context``) in one call; return the logits of each row whose pending
        tokens are all decoded now, after its last one."""
        total = sum(count for _, count in fed)
        if total > self._capacity:
            raise ValueError(f"{total} tokens do not fit one decode ({self._capacity})")
        start, outputs = 0, []
        for index, count in fed:
            row = self.rows[index]
            end = start + count
            self._tokens[start:end] = row.pending[:count]
            self._positions[start:end] = np.arange(len(row.tokens), len(row.tokens) + count)
            self._outputs[start:end] = 0
            if count == len(row.pending):
                self._outputs[end - 1] = 1
                outputs.append(end - 1)
            for slot in range(start, end):
                self._batch.seq_id[slot][0] = row.sequence
            start = end
        self._batch.n_tokens = total
        context.decode(self._batch)
        for index, count in fed:
            row = self.rows[index]
            row.tokens += row.pending[:count]
            row.pending = row.pending[count:]
        if not outputs:
            return np.empty((0, self.versions.model.vocab_size), dtype=np.float32)
        return np.stack([context.logits(output) for output in outputs])
