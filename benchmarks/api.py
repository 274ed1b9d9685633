"""The OpenAI-compatible API's streaming overhead: /v1/chat/completions streamed over
HTTP against the same replies streamed straight from an engine in this process.

Same model, prompts and greedy decoding; 1 and 8 concurrent clients; the API and
the engine take turns round by round, so both see the same machine ("one window").
Prints tok/s (all clients together) and first-token times, and ends with
``api_stream_ratio: <API tok/s ÷ engine tok/s>`` (the geometric mean over 1 and 8).

The client shares the server's two cores here, and every millisecond it spends
is taken from llama.cpp's threads; an app's client runs on its own machine. So the
headline client reads the stream off the socket (HTTP/1.1 chunks, JSON parsed only
for the first text and the usage), about a third of httpx's CPU per event. The
same rounds through httpx are printed too (``api_httpx_*``), as the figure a
client on this very machine would see.
Usage: python benchmarks/api.py [--tokens 64] [--rounds 4] [--model smollm2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import PROMPTS, make_user, server_env, setup_django  # noqa: E402

CONCURRENCY = (1, 8)


async def engine_reply(engine, prompt: str, tokens: int) -> dict:
    from llm.engine.base import GenerationRequest, Token
    from llm.sampling import SamplingParams

    request = GenerationRequest(
        messages=[{"role": "user", "content": prompt}],
        sampling=SamplingParams(temperature=0.0, max_new_tokens=tokens),
    )
    start, first, count = time.perf_counter(), None, 0
    async for event in engine.stream(request):
        if isinstance(event, Token):
            first = first or time.perf_counter()
            count += 1
    return {"tokens": count, "ttft": (first or time.perf_counter()) - start}


def completion_body(prompt: str, tokens: int) -> dict:
    return {
        "model": "loopchat",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def api_reply(url: str, key: str, prompt: str, tokens: int) -> dict:
    """One streamed completion read straight off the socket."""
    address = urlsplit(url)
    body = json.dumps(completion_body(prompt, tokens)).encode()
    start, first, usage = time.perf_counter(), None, None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the API answered {head!r}")
        while size := int((await reader.readline()).split(b";")[0], 16):  # chunked
            data = await reader.readexactly(size + 2)
            if first is None and _has_text(data):
                first = time.perf_counter()
            if b'"usage": {' in data:
                usage = data
    finally:
        writer.close()
    chunk = json.loads(usage.split(b"data: ", 1)[1].split(b"\n", 1)[0])
    count = chunk["usage"]["completion_tokens"]
    return {"tokens": count, "ttft": (first or time.perf_counter()) - start}


def _has_text(data: bytes) -> bool:
    events = [line for line in data.split(b"\n") if line.startswith(b"data: {")]
    return any(json.loads(event[6:])["choices"][0]["delta"].get("content") for event in events)


async def api_httpx_reply(client, url: str, key: str, prompt: str, tokens: int) -> dict:
    body = completion_body(prompt, tokens)
    headers = {"Authorization": f"Bearer {key}"}
    start, first, count = time.perf_counter(), None, 0
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as r:
        async for line in r.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = first or time.perf_counter()
            if chunk.get("usage"):
                count = chunk["usage"]["completion_tokens"]
    return {"tokens": count, "ttft": (first or time.perf_counter()) - start}


async def one_round(reply, clients: int) -> dict:
    """``clients`` replies at once: tokens per second over them all, median first token."""
    start = time.perf_counter()
    results = await asyncio.gather(*(reply(PROMPTS[index]) for index in range(clients)))
    elapsed = time.perf_counter() - start
    return {
        "tok_s": sum(result["tokens"] for result in results) / elapsed,
        "ttft_ms": statistics.median(result["ttft"] for result in results) * 1000,
    }


async def measure(engine, url: str, key: str, tokens: int, rounds: int) -> dict:
    import httpx

    figures = {(side, n): [] for side in ("engine", "api", "api_httpx") for n in CONCURRENCY}
    async with httpx.AsyncClient(timeout=600) as client:
        sides = {
            "engine": lambda prompt: engine_reply(engine, prompt, tokens),
            "api": lambda prompt: api_reply(url, key, prompt, tokens),
            "api_httpx": lambda prompt: api_httpx_reply(client, url, key, prompt, tokens),
        }
        for number in range(rounds + 1):  # the first round warms both up
            for clients in CONCURRENCY:
                for side, reply in sides.items():
                    result = await one_round(reply, clients)
                    if number:
                        figures[side, clients].append(result)
    return {
        key: {name: statistics.median(r[name] for r in results) for name in ("tok_s", "ttft_ms")}
        for key, results in figures.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()
    workdir = setup_django()
    from django.contrib.auth import get_user_model

    from chat.keys import api_key_create
    from live.engines import local_engine
    from tests.support.servers import asgi_server

    make_user("bench", max_new_tokens=args.tokens)
    key = api_key_create(owner=get_user_model().objects.get(username="bench")).secret
    engine = local_engine(args.model)
    engine.start()
    env = server_env(CHAT_MODEL=args.model, CHAT_DEFAULT_SYSTEM_PROMPT="")
    with asgi_server(env, workdir / "server.log") as url:
        asyncio.run(engine.wait_ready())
        figures = asyncio.run(measure(engine, url, key, args.tokens, args.rounds))
    engine.close()
    ratios = []
    for clients in CONCURRENCY:
        direct, api = figures["engine", clients], figures["api", clients]
        ratios.append(api["tok_s"] / direct["tok_s"])
        print(f"engine_tok_per_s_{clients}: {direct['tok_s']:.2f}")
        print(f"api_tok_per_s_{clients}: {api['tok_s']:.2f}")
        print(f"engine_ttft_ms_{clients}: {direct['ttft_ms']:.1f}")
        print(f"api_ttft_ms_{clients}: {api['ttft_ms']:.1f}")
        print(f"api_ratio_{clients}: {ratios[-1]:.3f}")
        through_httpx = figures["api_httpx", clients]
        print(f"api_httpx_tok_per_s_{clients}: {through_httpx['tok_s']:.2f}")
        print(f"api_httpx_ttft_ms_{clients}: {through_httpx['ttft_ms']:.1f}")
        print(f"api_httpx_ratio_{clients}: {through_httpx['tok_s'] / direct['tok_s']:.3f}")
    print(f"api_stream_ratio: {statistics.geometric_mean(ratios):.3f}")


if __name__ == "__main__":
    main()
