"""What the in-process engines share: one thread owns the model and runs a dynamic batch.

Requests arrive on a thread-safe inbox. Between two decode steps the thread
admits waiting requests (prefill, first token) into the running batch, so a
request that arrives while others generate joins them at the next step
instead of queueing behind them. Events go back to each caller's event loop
with ``call_soon_threadsafe``; the event loop never runs model code.

A backend (``LocalEngine`` on transformers, ``LlamaCppEngine`` on llama.cpp)
says how to load its model and gives a batch with the same small surface:
``prefill``, ``step``, ``set_next_token``, ``keep_rows``, ``clear``, ``size``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable
from collections.abc import Set as AbstractSet
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from llm.engine.base import (
    Engine,
    EngineError,
    EngineState,
    Finished,
    FinishReason,
    GenerationEvent,
    GenerationRequest,
    Started,
    Token,
)
from llm.prompting import fit_messages

logger = logging.getLogger(__name__)

# A prompt gets at least this many tokens of the window, whatever max_new_tokens says.
MIN_PROMPT_BUDGET = 32
# Put in the inbox by ``close``: the engine thread ends when it takes it.
_CLOSE = object()


class _Closed(Exception):
    """Raised on the engine thread when it takes ``_CLOSE``."""


class RowBatch(Protocol):
    """The running batch of a backend: one row per generating request."""

    @property
    def size(self) -> int: ...

    @property
    def prefilling(self) -> AbstractSet[int]:
        """Rows the last step gave no logits: their prompts are still being decoded."""

    def prefill(self, prompt_ids: list[int], adapter: str | None) -> torch.Tensor | None:
        """Add a row for this prompt: its first logits now, or None if a step gives them."""

    def step(self) -> torch.Tensor: ...

    def set_next_token(self, row: int, token_id: int) -> None: ...

    def keep_rows(self, rows: list[int]) -> None: ...

    def clear(self) -> None: ...


@dataclass
class Job:
    request: GenerationRequest
    sink: Callable[[GenerationEvent], None]
    submitted: float = field(default_factory=time.perf_counter)
    generator: torch.Generator | None = None
    token_ids: list[int] = field(default_factory=list)
    text_sent: str = ""
    first_token_at: float | None = None
    adapter: str | None = None  # the adapter serving this row, once admitted
    cancelled: bool = False
    is_done: bool = False

    def finish(self, reason: FinishReason, error: str = "") -> None:
        self.is_done = True
        now = time.perf_counter()
        first = None if self.first_token_at is None else self.first_token_at - self.submitted
        self.sink(Finished(reason, len(self.token_ids), first, now - self.submitted, error))


class ThreadedEngine(Engine):
    """Serves many conversations at once from one model in this process.

    Subclasses load the model on the engine thread (``_open``: sets ``loaded``,
    with ``tokenizer`` and ``context_window``, and ``versions``, with
    ``serve``, ``adapters`` and ``stop_ids``) and give it a batch (``_new_batch``).
    """

    def __init__(self, max_batch_size: int = 16):
        self.max_batch_size = max_batch_size
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._state = EngineState.LOADING
        self._error = ""
        self._ready = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.loaded: Any = None
        self.versions: Any = None
        # The engine thread's running rows and waiting jobs, read (never changed) by
        # metrics: len() of a list another thread appends to is safe in CPython.
        self._rows: list[Job] = []
        self._waiting: deque[Job] = deque()

    # -- what a backend provides ----------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Load the model on the engine thread; set ``loaded`` and ``versions``."""

    @abstractmethod
    def _new_batch(self) -> RowBatch:
        """An empty running batch on the loaded model."""

    @abstractmethod
    def _pick(self, logits: torch.Tensor, job: Job) -> int:
        """The next token from one row of logits (``llm.sampling.pick_token``)."""

    def _has_room(self, batch: RowBatch, rows: list[Job], job: Job, prompt_ids: list[int]) -> bool:
        """Whether ``job`` can join ``rows`` now (asked also when there are none, to
        make room); it waits for some to leave if not."""
        return True

    def _release(self) -> None:  # noqa: B027 - nothing to free unless overridden
        """Free what ``_open`` took, on the engine thread, once it stops serving."""

    # -- public surface -------------------------------------------------------

    @property
    def state(self) -> EngineState:
        return self._state

    def start(self) -> None:
        """Start the engine thread (and the model load) once; safe to call again."""
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llm-engine", daemon=True)
                self._thread.start()

    async def wait_ready(self) -> None:
        self.start()
        await asyncio.get_running_loop().run_in_executor(None, self._ready.wait)
        if self._state is EngineState.FAILED:
            raise EngineError(f"the model failed to load: {self._error}")

    def close(self, timeout: float = 60.0) -> None:
        """End the engine thread and wait (up to ``timeout`` seconds: a load or a step
        in progress ends first) until it has freed the model; requests it still
        holds finish as cancelled."""
        self._closed = True
        self._inbox.put(_CLOSE)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        if self._closed:
            yield Finished(FinishReason.ERROR, 0, None, 0.0, "the engine is closed")
            return
        self.start()
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        job = Job(request, sink=lambda event: None)
        job.sink = _threadsafe_sink(loop, events, job)
        self._inbox.put(job)
        try:
            while True:
                event = await events.get()
                yield event
                if isinstance(event, Finished):
                    return
        finally:
            # Seen by the engine thread before its next step: the row is dropped.
            job.cancelled = True

    @property
    def batch_size(self) -> int:
        """Rows in the running batch now."""
        return len(self._rows)

    @property
    def waiting(self) -> int:
        """Requests waiting to join the batch (in the inbox or admitted next)."""
        return len(self._waiting) + self._inbox.qsize()

    def call(self, function: Callable[[Any], object]) -> Future:
        """Run ``function(loaded_model)`` on the engine thread, between two steps.

        Changing the model (loading an adapter, switching versions) must never
        race a forward pass; this is the one door for it.
        """
        self.start()
        future: Future = Future()
        self._inbox.put((function, future))
        return future

    # -- the engine thread ----------------------------------------------------

    def _run(self) -> None:
        try:
            self._open()
        except Exception as error:  # noqa: BLE001 - reported to every caller
            logger.exception("model load failed")
            self._error = str(error)
            self._state = EngineState.FAILED
            self._ready.set()
            self._fail_forever()
            return
        self._state = EngineState.READY
        self._ready.set()
        try:
            self._serve()
        finally:
            self._release()

    def _fail_forever(self) -> None:
        while (item := self._inbox.get()) is not _CLOSE:
            if isinstance(item, Job):
                item.finish(FinishReason.ERROR, f"the model failed to load: {self._error}")
            else:
                item[1].set_exception(EngineError(self._error))

    def _serve(self) -> None:
        batch = self._new_batch()
        rows: list[Job] = []  # one per batch row, in batch order
        waiting: deque[Job] = deque()
        self._rows, self._waiting = rows, waiting  # for metrics only
        while True:
            try:
                self._turn(batch, rows, waiting)
            except _Closed:
                for job in [*rows, *waiting]:
                    if not job.is_done:
                        job.finish(FinishReason.CANCELLED)
                return
            except Exception as error:  # noqa: BLE001 - fail the batch, keep serving
                logger.exception("generation step failed")
                for job in rows:
                    if not job.is_done:
                        job.finish(FinishReason.ERROR, f"generation failed: {error}")
                rows.clear()
                batch.clear()

    def _turn(self, batch: RowBatch, rows: list[Job], waiting: deque[Job]) -> None:
        """Admit waiting requests, drop finished rows, then one decode step for all."""
        self._take_inbox(waiting, block=not rows and not waiting)
        rows[:] = self._drop_finished(rows, batch)  # their room goes to the waiting
        while waiting and len(rows) < self.max_batch_size:
            admitted = self._admit(waiting[0], batch, rows)
            if admitted is None:
                break  # no room until rows leave: it stays first in line
            job = waiting.popleft()
            if admitted:
                rows.append(job)
        rows[:] = self._drop_finished(rows, batch)  # and those that ended at their first token
        if not rows:
            return
        logits = batch.step()
        for row, job in enumerate(rows):
            if row not in batch.prefilling:
                self._emit_token(job, batch, row, logits[row])

    def _take_inbox(self, waiting: deque[Job], block: bool) -> None:
        try:
            item = self._inbox.get(block=block)
            while True:
                if item is _CLOSE:
                    raise _Closed
                if isinstance(item, Job):
                    waiting.append(item)
                else:
                    self._run_call(*item)
                item = self._inbox.get_nowait()
        except queue.Empty:
            return

    def _run_call(self, function: Callable, future: Future) -> None:
        try:
            future.set_result(function(self.loaded))
        except Exception as error:  # noqa: BLE001 - handed to the caller
            future.set_exception(error)

    def _admit(self, job: Job, batch: RowBatch, rows: list[Job]) -> bool | None:
        """Prefill a waiting request and emit its first token: True if it got a row,
        False if it ended, None if it must wait for room."""
        if job.cancelled:
            job.finish(FinishReason.CANCELLED)
            return False
        request = job.request
        try:
            in_use = {row.adapter for row in rows if row.adapter}
            version = self.versions.serve(request.version, request.adapter_path, in_use)
            job.adapter = version.adapter
            messages, prompt_ids = self._fit(request)
            if not self._has_room(batch, rows, job, prompt_ids) and rows:
                return None  # (with no rows it is alone: the window check above holds)
            job.sink(Started(messages, len(prompt_ids), version.label))
            if request.sampling.seed is not None:
                job.generator = torch.Generator().manual_seed(request.sampling.seed)
            logits = batch.prefill(prompt_ids, version.adapter)
        except Exception as error:  # noqa: BLE001 - this request fails, others go on
            logger.info("request %s refused: %s", request.request_id, error)
            job.finish(FinishReason.ERROR, str(error))
            return False
        if logits is not None:  # else its first logits come with the next step
            self._emit_token(job, batch, batch.size - 1, logits)
        return True

    def _fit(self, request: GenerationRequest) -> tuple[list[dict], list[int]]:
        window = self.loaded.context_window
        budget = window - request.sampling.max_new_tokens
        if budget < MIN_PROMPT_BUDGET:
            raise EngineError(
                f"max_new_tokens is too large for this model's context window ({window} tokens)"
            )
        return fit_messages(self.loaded.tokenizer, request.messages, budget)

    def _emit_token(self, job: Job, batch: RowBatch, row: int, logits: torch.Tensor) -> bool:
        """Sample one token for ``job``, send it, and say whether the row goes on."""
        if job.cancelled:
            job.finish(FinishReason.CANCELLED)
            return False
        try:
            token_id = self._pick(logits, job)
        except Exception as error:  # noqa: BLE001 - uncaught, it would kill the engine thread
            logger.exception("sampling failed for request %s", job.request.request_id)
            job.finish(FinishReason.ERROR, f"sampling failed: {error}")
            return False
        if job.first_token_at is None:
            job.first_token_at = time.perf_counter()
        if token_id in self.versions.stop_ids:
            job.finish(FinishReason.STOP)
            return False
        job.token_ids.append(token_id)
        batch.set_next_token(row, token_id)
        last = len(job.token_ids) >= job.request.sampling.max_new_tokens
        text = self._new_text(job, last)
        saved_logits = logits.detach().float().cpu().clone() if job.request.return_logits else None
        job.sink(Token(text, token_id, saved_logits))
        if last:
            job.finish(FinishReason.LENGTH)
            return False
        return True

    def _new_text(self, job: Job, last: bool) -> str:
        """The text this token adds; bytes of an unfinished character wait, except
        after the last token the length limit allows (they become U+FFFD, as in
        the decoded reply)."""
        text = self.loaded.tokenizer.decode(job.token_ids, skip_special_tokens=True)
        if text.endswith("\ufffd") and not last:
            return ""
        delta = text[len(job.text_sent) :]
        job.text_sent = text
        return delta

    def _drop_finished(self, rows: list[Job], batch: RowBatch) -> list[Job]:
        """Keep the rows still generating; a cancelled row is told it stopped."""
        keep = []
        for row, job in enumerate(rows):
            if job.cancelled and not job.is_done:
                job.finish(FinishReason.CANCELLED)
            elif not job.is_done and self._adapter_gone(job):
                # Its version was unloaded between two steps: stepping it would fail every row.
                job.finish(FinishReason.ERROR, f"model version {job.adapter!r} was unloaded")
            if not job.is_done:
                keep.append(row)
        batch.keep_rows(keep)
        return [rows[row] for row in keep]

    def _adapter_gone(self, job: Job) -> bool:
        return job.adapter is not None and job.adapter not in self.versions.adapters


def _threadsafe_sink(
    loop: asyncio.AbstractEventLoop, events: asyncio.Queue, job: Job
) -> Callable[[GenerationEvent], None]:
    def sink(event: GenerationEvent) -> None:
        try:
            loop.call_soon_threadsafe(events.put_nowait, event)
        except RuntimeError:  # the caller's loop is gone: nobody is listening
            job.cancelled = True

    return sink
