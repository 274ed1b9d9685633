"""llama.cpp's model and contexts, through llama-cpp-python's low-level (C) API.

The GGUF file is served directly. Prompts are made, and replies decoded, by the
Hugging Face tokenizer of the same model (the embedded model's converted folder),
so the chat template and the text are exactly the transformers engine's; the
GGUF's token ids are the same ids (checked in the tests).

``weights`` picks what llama.cpp computes with: the file as it is (the embedded
model's Q4_1), or a Q8_0 or F16 copy of it, made once in the model cache
(``llama_model_quantize``, under a second). Q4_1 has no batched matrix multiply on
x86, so it is the fastest alone and the slowest together; docs/operating.md has
the measured table.

A context is one KV cache with room for ``cells`` tokens shared by up to
``sequences`` conversations (a unified cache: a conversation may use the whole
window while others are short), and one LoRA adapter set: a model version.
A finished conversation's cells stay (up to ``kept`` of them, the oldest freed
first, or sooner when a new reply needs the room or after ``KEPT_STEPS``
steps unused, when they have cost more than they save), so the next prompt that
begins the same way (the conversation's next turn, a regenerated reply) decodes
only what is new: llama.cpp's server keeps its slots' prompts the same way.
"""

from __future__ import annotations

import ctypes
import fcntl
import functools
import logging
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import numpy as np
from transformers import AutoTokenizer, GenerationConfig, PreTrainedTokenizerBase

from llm.engine.base import EngineError
from llm.loading import (
    EMBEDDED_MODEL,
    file_stamp,
    gguf_file_for,
    model_label,
    prepare_embedded_model,
)

logger = logging.getLogger(__name__)

# Tokens llama.cpp computes at once (a longer decode call goes in pieces).
DECODE_CHUNK = 512

# A kept conversation's cells cost every later decode of its context attention time
# (~1.1 µs a cell a step, measured on F16 with 2 threads: 8000 kept cells took a
# token from 17.5 to 21.8 ms), and decoding them again costs ~2 ms a token (a
# 460-token prompt: 816 ms). After this many steps unused, keeping them has cost
# what they could save, so they are freed; an idle engine keeps them.
KEPT_STEPS = 2000

# LLAMACPP_WEIGHTS: the file as it is, or a copy in another tensor type.
WEIGHTS = ("file", "q8_0", "f16")
_FILE_TYPES = {
    "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
    "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16,
}


@dataclass
class LlamaModel:
    """A GGUF model loaded by llama.cpp, with the tokenizer that makes its prompts."""

    pointer: llama_cpp.llama_model_p
    tokenizer: PreTrainedTokenizerBase
    name: str  # recorded on every reply: the same label as the transformers engine's
    path: str  # the GGUF file
    context_window: int
    vocab_size: int
    stop_ids: set[int]
    threads: int

    def close(self) -> None:
        if self.pointer:
            llama_cpp.llama_model_free(self.pointer)
            self.pointer = None


def check_weights(weights: str) -> str:
    if weights not in WEIGHTS:
        raise ValueError(f"the weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    return weights


def served_gguf(name: str, cache_dir: str | Path, weights: str = "file") -> Path:
    """The GGUF file llama.cpp serves ``CHAT_MODEL`` ``name`` from, as ``weights`` says."""
    path = gguf_file_for(name)
    if path is None:
        raise EngineError(f"{name!r} has no GGUF file for llama.cpp")
    if check_weights(weights) == "file":
        return path
    return _retyped_copy(path, weights, Path(cache_dir))


def _retyped_copy(path: Path, weights: str, cache_dir: Path) -> Path:
    """``path`` with its tensors in ``weights``' type, written once into ``cache_dir``
    (named after the file, its size and time: a file replaced in place is redone)."""
    target = cache_dir / f"{path.stem}-{file_stamp(path)}.{weights}.gguf"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    _backend_init()
    with open(cache_dir / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        logger.info("Writing %s as %s for llama.cpp (once)", path.name, weights)
        handle, staging = tempfile.mkstemp(dir=cache_dir, prefix=".converting-", suffix=".gguf")
        os.close(handle)
        try:
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = _FILE_TYPES[weights]
            params.allow_requantize = True  # from Q4_1: its values, in a wider type
            params.nthread = os.cpu_count() or 1
            status = llama_cpp.llama_model_quantize(
                str(path).encode(), staging.encode(), ctypes.byref(params)
            )
            if status != 0:
                raise EngineError(f"llama.cpp could not write {path.name} as {weights}")
            os.chmod(staging, 0o644)
            os.rename(staging, target)
        finally:
            if os.path.exists(staging):
                os.unlink(staging)
    return target


def load_llama_model(
    name: str, cache_dir: str | Path, threads: int = 0, weights: str = "file"
) -> LlamaModel:
    """Load ``CHAT_MODEL`` ``name`` (the embedded model or a ``.gguf`` path) into llama.cpp.

    ``threads`` 0 means one per core; ``weights`` (``LLAMACPP_WEIGHTS``) as in
    ``served_gguf``. Its tokenizer comes from the embedded model's converted folder
    (made once, ~40 s) or from the GGUF file itself.
    """
    source = gguf_file_for(name)
    path = served_gguf(name, cache_dir, weights)
    _backend_init()
    params = llama_cpp.llama_model_default_params()
    # The extra buffer types put Q4 weights in AMX layout on CPUs that have it; its
    # matrix multiply crashed (SIGSEGV) on this project's AMX machines.
    params.use_extra_bufts = False
    pointer = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    if not pointer:
        raise EngineError(f"llama.cpp could not load {path}")
    vocab = llama_cpp.llama_model_get_vocab(pointer)
    tokenizer, stop_ids = _tokenizer(name, source, cache_dir)
    return LlamaModel(
        pointer=pointer,
        tokenizer=tokenizer,
        name=model_label(name),
        path=str(path),
        context_window=llama_cpp.llama_model_n_ctx_train(pointer),
        vocab_size=llama_cpp.llama_vocab_n_tokens(vocab),
        stop_ids=stop_ids,
        threads=threads or os.cpu_count() or 1,
    )


def _tokenizer(
    name: str, path: Path, cache_dir: str | Path
) -> tuple[PreTrainedTokenizerBase, set[int]]:
    """The Hugging Face tokenizer and the ids that end a reply, as transformers has them."""
    if name in ("", EMBEDDED_MODEL):
        folder = prepare_embedded_model(cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        configured = GenerationConfig.from_pretrained(folder).eos_token_id
    else:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        configured = None
    stop_ids = {configured} if isinstance(configured, int) else set(configured or ())
    if tokenizer.eos_token_id is not None:
        stop_ids.add(tokenizer.eos_token_id)
    return tokenizer, stop_ids


@functools.cache
def _backend_init() -> None:
    llama_cpp.llama_backend_init()
    # llama-cpp-python's own log callback maps ggml's levels one off (it prints every
    # INFO line of each load as a warning): send warnings and errors to logging instead.
    llama_cpp.llama_log_set(_log_to_python, ctypes.c_void_p(0))


_GGML_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # GGML_LOG_LEVEL_WARN, _ERROR


@llama_cpp.llama_log_callback
def _log_to_python(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    if level in _GGML_LEVELS:
        logger.log(_GGML_LEVELS[level], "%s", text.decode("utf-8", "replace").rstrip())


class LlamaContext:
    """One llama.cpp context: a KV cache, its sequence ids, and one adapter set."""

    def __init__(
        self,
        model: LlamaModel,
        cells: int,
        sequences: int,
        adapter: llama_cpp.llama_adapter_lora_p | None = None,
        kept: int | None = None,
    ):
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = cells
        # One call takes a whole prompt (llama.cpp splits it into pieces of
        # DECODE_CHUNK) or a step's tokens; it keeps logits for one token per row.
        params.n_batch = cells
        params.n_ubatch = DECODE_CHUNK
        # A sequence per conversation being written, and one per finished conversation
        # whose cells are kept for the next prompt that begins the same way.
        kept = sequences if kept is None else kept
        params.n_seq_max = sequences + kept
        params.n_outputs_max = params.n_seq_max  # llama.cpp reserves room for one each
        params.n_threads = params.n_threads_batch = model.threads
        params.kv_unified = True
        # Flash attention skips other sequences' cells almost for free: on F16 with 2
        # threads, 8000 cells of other (kept) conversations took a token from 17.5 to
        # 21.8 ms with it and from 16.8 to 43.1 ms without; a 460-token prompt took
        # 816 ms against 1034. It is slower for one token deep in its own long
        # conversation (49 against 25 ms at 2000 tokens). Rows are not bit-exact
        # batched against alone either way: a prompt at once against token by token
        # differs by ~0.05 on F16, up to ~1.2 on Q4_1 (its quantised activations
        # amplify the attention's rounding), as sequences come and go in the cache.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        params.no_perf = True
        self.pointer = llama_cpp.llama_init_from_model(model.pointer, params)
        if not self.pointer:
            raise EngineError("llama.cpp could not create a context")
        self.cells = llama_cpp.llama_n_ctx(self.pointer)
        self.vocab_size = model.vocab_size
        self.adapter = adapter
        if adapter:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            llama_cpp.llama_set_adapters_lora(self.pointer, adapters, 1, (ctypes.c_float * 1)(1.0))
        self.max_kept = kept
        self._free_sequences = list(range(sequences + kept))
        # Finished conversations' sequences and the tokens their cells hold, oldest
        # first, and the step each was kept at.
        self._kept: OrderedDict[int, np.ndarray] = OrderedDict()
        self._kept_at: dict[int, int] = {}
        self.steps = 0  # decode calls so far

    @property
    def is_open(self) -> bool:
        return bool(self.pointer)

    @property
    def kept_sequences(self) -> list[int]:
        """The finished conversations' sequences whose cells are kept, oldest first."""
        return list(self._kept)

    @property
    def kept_cells(self) -> int:
        """Cells the kept conversations hold (those they share with others counted too)."""
        return sum(len(tokens) for tokens in self._kept.values())

    def start_sequence(self, prompt_ids: list[int]) -> tuple[int, int]:
        """A sequence for a new conversation, and how many of its first tokens are in
        its cells already: the longest beginning it shares with a kept conversation
        (a new turn of a conversation shares all of it, a regenerated reply its prompt,
        any prompt the template and system prompt). Its last two tokens are always left
        to decode: one gives the logits, and a prompt's tail of two or more tokens gets
        exactly the logits of the whole prompt decoded cold (one token alone takes the
        dot-product path, ~0.03 off on F16)."""
        prompt = np.asarray(prompt_ids, dtype=np.int32)
        best, common = None, 0
        for sequence, tokens in self._kept.items():
            shared = _shared_prefix(tokens, prompt)
            if shared > common:
                best, common = sequence, shared
        common = min(common, len(prompt_ids) - 2)
        if best is None or common <= 0:
            return self._free_sequences.pop(0), 0
        if common == len(self._kept[best]):  # it goes on where that one ended: take it over
            del self._kept[best], self._kept_at[best]
            return best, common
        # Only a beginning is shared (a template, a regenerated reply's prompt): the
        # kept one ages as before, or the system prompt alone would keep it for ever.
        sequence = self._free_sequences.pop(0)
        # In the unified cache a copy shares the cells: nothing is computed or written.
        llama_cpp.llama_memory_seq_cp(self._memory(), best, sequence, 0, common)
        return sequence, common

    def keep(self, sequence: int, tokens: list[int]) -> None:
        """Keep a finished conversation's cells (``tokens``, from position 0) for a later
        prompt that begins the same way; the oldest go past ``max_kept``."""
        if not self.is_open or not self.max_kept or not tokens:
            self.release_sequence(sequence)
            return
        self._kept[sequence] = np.asarray(tokens, dtype=np.int32)
        self._kept_at[sequence] = self.steps
        while len(self._kept) > self.max_kept:
            self.forget_oldest()

    def forget_oldest(self) -> bool:
        """Free the oldest kept conversation's cells; False if none is kept."""
        if not self._kept:
            return False
        sequence, _ = self._kept.popitem(last=False)
        del self._kept_at[sequence]
        self.release_sequence(sequence)
        return True

    def decode(self, batch: llama_cpp.llama_batch) -> None:
        self.steps += 1
        while self._kept and self._kept_at[next(iter(self._kept))] < self.steps - KEPT_STEPS:
            self.forget_oldest()  # unused for KEPT_STEPS: no longer worth its cost
        status = llama_cpp.llama_decode(self.pointer, batch)
        if status != 0:
            raise EngineError(f"llama_decode failed ({status})")

    def logits(self, index: int) -> np.ndarray:
        """A view of the logits llama.cpp kept for token ``index`` of the last batch."""
        pointer = llama_cpp.llama_get_logits_ith(self.pointer, index)
        return np.ctypeslib.as_array(pointer, shape=(self.vocab_size,))

    def release_sequence(self, sequence: int) -> None:
        """Forget a finished conversation's tokens and give its id back."""
        if self.is_open:
            llama_cpp.llama_memory_seq_rm(self._memory(), sequence, -1, -1)
        self._free_sequences.append(sequence)

    def _memory(self) -> llama_cpp.llama_memory_t:
        return llama_cpp.llama_get_memory(self.pointer)

    def close(self) -> None:
        if self.pointer:
            llama_cpp.llama_free(self.pointer)
            self.pointer = None
        self._kept.clear()
        self._kept_at.clear()


def _shared_prefix(first: np.ndarray, second: np.ndarray) -> int:
    """How many tokens two sequences begin with in common."""
    length = min(len(first), len(second))
    differ = np.flatnonzero(first[:length] != second[:length])
    return int(differ[0]) if len(differ) else length
