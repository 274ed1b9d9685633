"""Serving throughput: 1 conversation, then 8 at once, over real websockets.

Prints aggregate tokens/s and p95 time to first token for each, ending with
``concurrency_ratio: <8-conversation tok/s / 1-conversation tok/s>``.
Usage: python benchmarks/concurrency.py [--tokens 64] [--conversations 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import (
    PROMPTS,
    make_user,
    percentile,
    server_env,
    setup_django,
    websocket_reply,
)  # noqa: E402


async def round_of(url: str, cookie: str, conversation_ids: list[int]) -> dict:
    start = time.perf_counter()
    replies = await asyncio.gather(
        *[
            websocket_reply(url, cookie, conversation_id, PROMPTS[index % len(PROMPTS)])
            for index, conversation_id in enumerate(conversation_ids)
        ]
    )
    elapsed = time.perf_counter() - start
    return {
        "tokens": sum(r["tokens"] for r in replies),
        "seconds": elapsed,
        "ttfts": [r["ttft"] for r in replies],
    }


def measure(url: str, cookie: str, conversations: list, width: int, rounds: int) -> dict:
    tokens, seconds, ttfts = 0, 0.0, []
    ids = [conversation.pk for conversation in conversations]
    for round_index in range(rounds):
        chunk = ids[round_index * width : (round_index + 1) * width]
        result = asyncio.run(round_of(url, cookie, chunk))
        tokens += result["tokens"]
        seconds += result["seconds"]
        ttfts += result["ttfts"]
    return {"tok_s": tokens / seconds, "p95_ttft_ms": percentile(ttfts, 0.95) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()
    workdir = setup_django()
    from tests.support.servers import asgi_server

    width, rounds = args.conversations, args.rounds
    cookie, conversations = make_user(
        "bench", max_new_tokens=args.tokens, temperature=0.0, count=1 + rounds + width * rounds
    )
    with asgi_server(server_env(CHAT_MODEL=args.model), workdir / "server.log") as url:
        measure(url, cookie, conversations[:1], 1, 1)  # warm-up
        single = measure(url, cookie, conversations[1 : 1 + rounds], 1, rounds)
        many = measure(url, cookie, conversations[1 + rounds :], width, rounds)
    print(f"single_tok_per_s: {single['tok_s']:.2f}")
    print(f"single_p95_ttft_ms: {single['p95_ttft_ms']:.1f}")
    print(f"concurrent_{width}_tok_per_s: {many['tok_s']:.2f}")
    print(f"concurrent_{width}_p95_ttft_ms: {many['p95_ttft_ms']:.1f}")
    print(f"concurrency_ratio: {many['tok_s'] / single['tok_s']:.3f}")


if __name__ == "__main__":
    main()
