"""Serving from OpenAI-compatible servers: vLLM first (SGLang, TGI, llama.cpp, Ollama alike).

:class:`OpenAIEngine` streams chat completions from one of several replicas
(``VLLM_URLS``) through the ``openai`` client and turns them into the same
events as the embedded engine, so the consumer, the protocol and the stored
replies cannot tell the backends apart.

- **Versions.** A trained version is a PEFT adapter folder; the first request
  naming it on a replica registers it there (vLLM's ``/v1/load_lora_adapter``,
  with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) and then names it as the
  ``model``. Each replica keeps at most ``max_adapters``; the least recently
  used one no reply is using is unloaded. A replica that restarted has
  forgotten its adapters: a "model does not exist" answer re-registers it once.
- **Replicas.** Each request goes to the healthy replica with the fewest
  replies in flight; equally idle ones take turns (round robin). One that
  refuses a connection is marked down and the request moves on to the next
  before any token is sent. A replica that dies during a reply ends that reply
  with an error at once (its socket closes), keeping what was written; one that
  hangs ends it after ``read_timeout`` seconds. Either way it is marked down,
  and a task of its own asks its ``/health`` every ``retry_seconds`` until it
  answers 200: then it takes replies again, whatever the others are doing.
  ``close`` cancels those tasks.
- **Stop.** Closing the stream closes the HTTP response; vLLM aborts the request.
- **Context window.** Where the server has vLLM's ``/tokenize``, the oldest
  turns are dropped until the prompt and ``max_new_tokens`` fit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import openai

from llm.engine.base import (
    ChatMessages,
    Engine,
    EngineState,
    Failure,
    Finished,
    FinishReason,
    GenerationEvent,
    GenerationRequest,
    Started,
    Token,
)

logger = logging.getLogger(__name__)

_FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}


class ReplicaDown(Exception):
    """A replica could not be reached (before any token of the reply was sent)."""


@dataclass
class Replica:
    url: str  # the server's root, e.g. http://10.0.0.5:8000 (the API is under /v1)
    client: openai.AsyncOpenAI
    http: httpx.AsyncClient
    in_flight: int = 0
    down_since: float | None = None
    # Adapter name -> folder, least recently used first; what this replica has loaded.
    adapters: OrderedDict[str, str] = field(default_factory=OrderedDict)
    using: dict[str, int] = field(default_factory=dict)  # adapter -> replies using it now
    max_model_len: int | None = None  # learnt from the first /tokenize answer
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    replies: int = 0  # replies this server accepted (its stream opened), for metrics
    # Asks /health every retry_seconds while the replica is down; None while healthy.
    probe: asyncio.Task | None = None

    @property
    def healthy(self) -> bool:
        return self.down_since is None


class OpenAIEngine(Engine):
    def __init__(
        self,
        urls: Sequence[str],
        *,
        model: str,
        base_label: str | None = None,
        api_key: str = "EMPTY",
        max_adapters: int = 2,
        read_timeout: float = 30.0,
        connect_timeout: float = 2.0,
        retry_seconds: float = 5.0,
        on_reply: Callable[[str], None] | None = None,
    ):
        if not urls:
            raise ValueError("OpenAIEngine needs at least one server URL")
        self.model = model  # the served base model's name (vLLM's --served-model-name)
        self.base_label = base_label or model  # what the base model's replies record
        self.max_adapters = max_adapters
        self.retry_seconds = retry_seconds
        self.on_reply = on_reply  # told each replica's URL as a reply goes there (metrics)
        self._urls = [url.rstrip("/") for url in urls]
        self._api_key = api_key
        self._timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._replicas: list[Replica] | None = None
        self._next = 0  # where the next search for the least busy replica starts

    @property
    def state(self) -> EngineState:
        return EngineState.READY  # replicas report failures per request

    @property
    def replicas(self) -> list[Replica]:
        # Built on first use, inside the event loop that will use the clients.
        if self._replicas is None:
            self._replicas = [self._replica(url) for url in self._urls]
        return self._replicas

    def _replica(self, url: str) -> Replica:
        http = httpx.AsyncClient(base_url=url, timeout=self._timeout)
        client = openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key=self._api_key, http_client=http, max_retries=0
        )
        return Replica(url=url, client=client, http=http)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationEvent]:
        started = time.perf_counter()
        tried: set[str] = set()
        while True:
            replica = await self._pick(tried)
            if replica is None:
                detail = "no inference server is reachable: " + ", ".join(tried or self._urls)
                yield _failed(started, detail, Failure.UNREACHABLE)
                return
            tried.add(replica.url)
            try:
                async for event in self._stream_on(replica, request, started):
                    yield event
                return
            except ReplicaDown as down:
                logger.warning("inference server %s is down: %s", replica.url, down)
                self._mark_down(replica)

    async def _pick(self, tried: set[str]) -> Replica | None:
        """The least busy healthy replica not yet tried, taking turns among equals.

        When every healthy one has been tried (or none is healthy), the down ones
        are asked ``/health`` now, rather than failing a reply that one could serve.
        """
        count = len(self.replicas)
        order = [self.replicas[(self._next + i) % count] for i in range(count)]
        untried = [replica for replica in order if replica.url not in tried]
        healthy = [replica for replica in untried if replica.healthy]
        if not healthy:
            healthy = [replica for replica in untried if await self._check_health(replica)]
        if not healthy:
            return None
        chosen = min(healthy, key=lambda replica: replica.in_flight)  # the first of equals
        self._next = (self.replicas.index(chosen) + 1) % count
        return chosen

    def _mark_down(self, replica: Replica) -> None:
        """Take ``replica`` out of service until its own probe finds it healthy."""
        replica.down_since = time.monotonic()
        replica.adapters.clear()  # a server that comes back has forgotten them
        if replica.probe is None or replica.probe.done():
            replica.probe = asyncio.get_running_loop().create_task(self._probe(replica))

    async def _probe(self, replica: Replica) -> None:
        while not replica.healthy:
            await asyncio.sleep(self.retry_seconds)
            if await self._check_health(replica):
                logger.info("inference server %s is healthy again", replica.url)

    async def _check_health(self, replica: Replica) -> bool:
        """Ask ``/health``; 200 puts the replica back in service, anything else keeps it out."""
        try:
            healthy = (await replica.http.get("/health", timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy:
            replica.down_since = None
        return healthy

    async def _stream_on(
        self, replica: Replica, request: GenerationRequest, started: float
    ) -> AsyncIterator[GenerationEvent]:
        replica.in_flight += 1
        adapter = request.version if request.adapter_path else None
        if adapter:
            replica.using[adapter] = replica.using.get(adapter, 0) + 1
        try:
            async for event in self._generate(replica, request, adapter, started):
                yield event
        finally:
            replica.in_flight -= 1
            if adapter:
                replica.using[adapter] -= 1

    async def _generate(
        self, replica: Replica, request: GenerationRequest, adapter: str | None, started: float
    ) -> AsyncIterator[GenerationEvent]:
        try:
            try:
                messages, prompt_tokens, stream = await self._request(replica, request, adapter)
            except openai.NotFoundError:
                if not adapter:
                    raise
                # The server restarted and forgot the version: register it again, once.
                replica.adapters.pop(adapter, None)
                messages, prompt_tokens, stream = await self._request(replica, request, adapter)
        except (openai.APIConnectionError, httpx.TransportError) as error:
            raise ReplicaDown(str(error)) from error
        except (openai.APIError, _ServerRefused) as error:
            detail = f"the inference server {replica.url} refused the request: {_reason(error)}"
            yield _failed(started, detail, Failure.SERVER_ERROR)
            return
        replica.replies += 1  # the server took it (a refused connection does not count)
        if self.on_reply:
            self.on_reply(replica.url)
        tokens, first, reason, announced = 0, None, FinishReason.STOP, False
        try:
            async with stream:
                async for chunk in stream:
                    if not announced:
                        # LoopChat's own workers say what the model saw after fitting the
                        # context window; vLLM's count came from /tokenize.
                        extra = chunk.model_extra or {}
                        usage = chunk.usage.prompt_tokens if chunk.usage else 0
                        announced = True
                        yield Started(
                            prompt_messages=extra.get("prompt_messages") or messages,
                            prompt_tokens=prompt_tokens or usage or 0,
                            model_version=adapter or self.base_label,
                        )
                    for choice in chunk.choices:
                        text = choice.delta.content if choice.delta else None
                        if text:
                            first = first or time.perf_counter()
                            tokens += 1  # corrected by the server's count where it sends one
                            yield Token(text=text, token_id=-1)
                        if choice.finish_reason:
                            reason = _FINISH.get(choice.finish_reason, FinishReason.STOP)
                    if chunk.usage is not None and chunk.usage.completion_tokens:
                        tokens = chunk.usage.completion_tokens
        except (openai.APIConnectionError, httpx.HTTPError) as error:
            self._mark_down(replica)
            detail = f"the inference server {replica.url} failed during the reply"
            yield _failed(
                started, f"{detail}: {_reason(error)}", Failure.SERVER_LOST, tokens, first
            )
            return
        except openai.APIError as error:  # the server reported an error and lives on
            detail = f"the inference server {replica.url} ended the reply with an error"
            yield _failed(
                started, f"{detail}: {_reason(error)}", Failure.SERVER_ERROR, tokens, first
            )
            return
        yield Finished(
            reason,
            tokens,
            None if first is None else first - started,
            time.perf_counter() - started,
        )

    async def _request(self, replica: Replica, request: GenerationRequest, adapter: str | None):
        """Register the version if needed, fit the prompt, open the stream."""
        if adapter:
            await self._ensure_adapter(replica, adapter, request.adapter_path)
        messages, prompt_tokens, room = await self._fit(
            replica, request.messages, request.sampling.max_new_tokens
        )
        stream = await self._open(replica, request, adapter, messages, room)
        return messages, prompt_tokens, stream

    async def _open(
        self,
        replica: Replica,
        request: GenerationRequest,
        adapter: str | None,
        messages: ChatMessages,
        room: int | None,
    ):
        sampling = request.sampling
        max_tokens = sampling.max_new_tokens if room is None else min(sampling.max_new_tokens, room)
        seed = {} if sampling.seed is None else {"seed": sampling.seed}
        return await replica.client.chat.completions.create(
            model=adapter or self.model,
            messages=messages,
            stream=True,
            # continuous_usage_stats is vLLM's; other servers ignore what they do not know.
            stream_options={"include_usage": True, "continuous_usage_stats": True},
            max_tokens=max_tokens,
            temperature=sampling.temperature,
            top_p=1.0 if sampling.greedy else sampling.top_p,
            **seed,
        )

    async def _fit(
        self, replica: Replica, messages: ChatMessages, wanted: int
    ) -> tuple[ChatMessages, int, int | None]:
        """Drop the oldest turns until the prompt leaves room for ``wanted`` new tokens.

        Returns (messages, prompt tokens, room left). When only system messages and
        the newest one are left, a shorter reply is allowed rather than none. Without
        vLLM's ``/tokenize`` (another server), the messages go as they are.
        """
        kept = [dict(message) for message in messages]
        if replica.max_model_len and _surely_fits(kept, wanted, replica.max_model_len):
            return kept, 0, None  # no round trip: the stream's usage says the prompt's size
        while True:
            response = await replica.http.post(
                "/tokenize",
                json={"model": self.model, "messages": kept, "add_generation_prompt": True},
            )
            if response.status_code == 404:
                return kept, 0, None
            if response.status_code != 200:
                raise _ServerRefused(response.text)
            counted = response.json()
            replica.max_model_len = counted["max_model_len"]
            room = counted["max_model_len"] - counted["count"]
            droppable = _droppable(kept)
            if room >= wanted or droppable is None:
                if room <= 0:
                    raise _ServerRefused("the newest message does not fit the context window")
                return kept, counted["count"], room
            del kept[droppable]
            # A history must not start with an orphaned assistant reply.
            while (first := _droppable(kept)) is not None and kept[first]["role"] == "assistant":
                del kept[first]

    async def _ensure_adapter(self, replica: Replica, name: str, path: str) -> None:
        async with replica.lock:
            if name in replica.adapters:
                replica.adapters.move_to_end(name)
                return
            response = await replica.http.post(
                "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path}
            )
            if response.status_code != 200 and "already" not in response.text:
                raise _ServerRefused(f"could not load version {name!r}: {response.text}")
            replica.adapters[name] = path
            await self._evict(replica)

    async def _evict(self, replica: Replica) -> None:
        """Unload the least recently used adapters no reply is using, past ``max_adapters``."""
        for name in list(replica.adapters):
            if len(replica.adapters) <= self.max_adapters:
                return
            if replica.using.get(name):
                continue
            response = await replica.http.post("/v1/unload_lora_adapter", json={"lora_name": name})
            if response.status_code == 200:
                del replica.adapters[name]

    def close(self) -> None:
        replicas, self._replicas = self._replicas or [], None
        for replica in replicas:
            # Without a running loop the process is ending, and the sockets with it.
            with contextlib.suppress(RuntimeError):
                if replica.probe is not None:
                    replica.probe.cancel()
                asyncio.get_running_loop().create_task(replica.http.aclose())


def _droppable(messages: ChatMessages) -> int | None:
    """The oldest message that is neither a system message nor the newest one."""
    return next((i for i, m in enumerate(messages[:-1]) if m["role"] != "system"), None)


def _surely_fits(messages: ChatMessages, wanted: int, max_model_len: int) -> bool:
    """True when the prompt cannot be too long, without asking the server to count.

    Byte-level tokenizers give at most one token per byte of text; each message's
    chat markup and the generation prompt are well under the allowance added here.
    """
    bound = sum(len(m["content"].encode()) + 16 for m in messages) + 64
    return bound + wanted <= max_model_len


class _ServerRefused(Exception):
    """The server answered, but not with what was asked."""


def _reason(error: Exception) -> str:
    if isinstance(error, openai.APIStatusError):
        try:
            return error.response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            return error.message
    return str(error) or type(error).__name__


def _failed(
    started: float,
    detail: str,
    failure: Failure,
    tokens: int = 0,
    first: float | None = None,
) -> Finished:
    return Finished(
        FinishReason.ERROR,
        tokens,
        None if first is None else first - started,
        time.perf_counter() - started,
        detail,
        failure,
    )
