"""What every generation engine offers, whatever runs the model.

A backend turns a :class:`GenerationRequest` into an async stream of events:
one :class:`Started`, any number of :class:`Token`, one :class:`Finished`.
Closing the stream early (``aclose`` or cancelling the task that iterates it)
cancels the request: that is how "stop" works everywhere.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from llm.sampling import SamplingParams

ChatMessages = list[dict[str, str]]


class FinishReason(StrEnum):
    STOP = "stop"  # the model ended its turn
    LENGTH = "length"  # max_new_tokens reached
    CANCELLED = "cancelled"  # the caller stopped it
    ERROR = "error"


class Failure(StrEnum):
    """Why a reply failed, in a word the delivery layer turns into a sentence for
    people (``Finished.error`` holds the details: addresses, exceptions)."""

    UNREACHABLE = "unreachable"  # no inference server answered
    SERVER_LOST = "server_lost"  # the server stopped answering during the reply
    SERVER_ERROR = "server_error"  # the server answered with an error
    ENGINE = "engine"  # this process's engine failed (model load, a generation step)


class EngineState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class GenerationRequest:
    messages: ChatMessages
    sampling: SamplingParams = field(default_factory=SamplingParams)
    # The adapter (model version) that serves this request; None is the base model.
    version: str | None = None
    # Where that version's adapter lives, so an engine that has not loaded it can.
    adapter_path: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Tests compare raw logits between batched and unbatched runs.
    return_logits: bool = False


@dataclass(frozen=True)
class Started:
    # The exact messages the model saw, after trimming to the context window.
    prompt_messages: ChatMessages
    prompt_tokens: int
    model_version: str


@dataclass(frozen=True)
class Token:
    text: str
    token_id: int
    logits: Any = None  # torch.Tensor when the request asked for it


@dataclass(frozen=True)
class Finished:
    finish_reason: FinishReason
    completion_tokens: int
    time_to_first_token: float | None
    duration: float
    error: str = ""  # what went wrong, for the log and staff: may name servers
    failure: Failure | None = None  # why, in one word, where the reason is ERROR


GenerationEvent = Started | Token | Finished


class EngineError(RuntimeError):
    """The engine could not serve a request (model failed to load, unknown version)."""


class Engine(ABC):
    """A generation backend: ``LocalEngine`` (this process's model) or ``RemoteEngine``
    (inference workers over a channel layer). ``live.engines`` picks one per
    the ``INFERENCE_MODE`` setting."""

    @property
    @abstractmethod
    def state(self) -> EngineState: ...

    @abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        """Generate for ``request``, yielding events until :class:`Finished`."""

    def start(self) -> None:  # noqa: B027 - nothing to start unless overridden
        """Begin getting ready (load the model) now rather than on the first request."""

    async def wait_ready(self) -> None:  # noqa: B027 - ready at once unless overridden
        """Return once the engine can serve; raise :class:`EngineError` if it cannot."""

    def close(self) -> None:  # noqa: B027 - nothing to release unless overridden
        """Release what the engine holds (its thread, its model). It serves no more."""
