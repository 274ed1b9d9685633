"""LangChain's chat-model interface over any generation engine.

``astream`` yields one chunk per generated token. Two content-less chunks
frame the stream: the first carries ``response_metadata["event"] ==
"started"`` (the exact messages the model saw, its version), the last
``"finished"`` (finish reason and figures), so callers can store what the
model saw without re-rendering the prompt.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from llm.engine.base import Engine, Finished, GenerationRequest, Started, Token
from llm.sampling import SamplingParams

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class EngineChatModel(BaseChatModel):
    """Streams replies from a LoopChat engine (local or remote)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Engine
    version: str | None = None
    adapter_path: str | None = None
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 512
    seed: int | None = None

    @property
    def _llm_type(self) -> str:
        return "loopchat-engine"

    def _request(self, messages: list[BaseMessage], **overrides: Any) -> GenerationRequest:
        sampling = SamplingParams(
            temperature=overrides.get("temperature", self.temperature),
            top_p=overrides.get("top_p", self.top_p),
            max_new_tokens=overrides.get("max_new_tokens", self.max_new_tokens),
            seed=overrides.get("seed", self.seed),
        )
        return GenerationRequest(
            messages=[to_role_content(message) for message in messages],
            sampling=sampling,
            version=overrides.get("version", self.version),
            adapter_path=overrides.get("adapter_path", self.adapter_path),
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        stream = self.engine.stream(self._request(messages, **kwargs))
        try:
            async for event in stream:
                chunk = _chunk_for(event)
                if run_manager and isinstance(event, Token):
                    await run_manager.on_llm_new_token(event.text, chunk=chunk)
                yield chunk
        finally:
            await stream.aclose()  # cancels the request if we stopped early

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text, metadata = [], {}
        async for chunk in self._astream(messages, stop, run_manager, **kwargs):
            text.append(chunk.message.content)
            metadata.update(chunk.message.response_metadata)
        metadata.pop("event", None)
        message = AIMessage(content="".join(text), response_metadata=metadata)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return asyncio.run(self._agenerate(messages, stop, **kwargs))

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        raise NotImplementedError("use astream: the engine streams asynchronously")


def to_role_content(message: BaseMessage) -> dict[str, str]:
    role = _ROLES.get(message.type)
    if role is None:
        raise ValueError(f"unsupported message type {message.type!r}")
    return {"role": role, "content": message.text}


def _chunk_for(event: Started | Token | Finished) -> ChatGenerationChunk:
    if isinstance(event, Token):
        return ChatGenerationChunk(message=AIMessageChunk(content=event.text))
    if isinstance(event, Started):
        metadata = {
            "event": "started",
            "prompt_messages": event.prompt_messages,
            "prompt_tokens": event.prompt_tokens,
            "model_version": event.model_version,
        }
    else:
        metadata = {
            "event": "finished",
            "finish_reason": str(event.finish_reason),
            "completion_tokens": event.completion_tokens,
            "time_to_first_token": event.time_to_first_token,
            "duration": event.duration,
            "error": event.error,
            "failure": str(event.failure or ""),
        }
    return ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=metadata))
