"""Engines side by side, in one window: bare llama.cpp, LoopChat's llama.cpp engine and
the transformers engine, the last two through real websockets.

- bare llama.cpp: llama-cpp-python's own ``Llama`` on the embedded GGUF, one stream,
  ``create_chat_completion(stream=True)``;
- ``llamacpp``: the app with ``INFERENCE_ENGINE=llamacpp`` at 1, 8 and 16 concurrent
  conversations;
- ``transformers``: the same with ``INFERENCE_ENGINE=transformers`` (the converted
  fp32 folder).

Greedy, the same prompts and reply length. tok/s counts the reply's tokens over the
time from sending to the last token, summed over each round of conversations; the
first-token times are the p95 over the round's replies (bare: the median of its runs).
Then one conversation at a time goes on for ``--turns`` messages: the first-token time
of its first and last turn shows what a long history costs (the llama.cpp engine
keeps a finished reply's cells for the next turn; transformers decodes it all again).
llama.cpp slows down badly on busy cores: the load average is printed before and after.
Ends with ``engine_vs_llamacpp: <LoopChat llama.cpp at 1 conversation ÷ bare llama.cpp>``.
``--weights`` is ``LLAMACPP_WEIGHTS`` (default: the setting's, F16; or the file as it
is, or its Q8_0 copy): bare llama.cpp runs the same file as the engine.
Usage: python benchmarks/engine.py [--tokens 64] [--rounds 2] [--widths 1,8,16]
       [--turns 6] [--threads 0] [--weights f16] [--skip-transformers]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import (  # noqa: E402
    PROMPTS,
    make_user,
    server_env,
    setup_django,
    websocket_reply,
)
from benchmarks.concurrency import measure  # noqa: E402


def bare_llamacpp(prompt: str, tokens: int, runs: int, threads: int, path: Path) -> dict:
    """llama-cpp-python's ``Llama`` on ``path``, one stream, as the engine configures
    llama.cpp."""
    import llama_cpp

    default_params = llama_cpp.llama_cpp.llama_model_default_params

    def params():
        made = default_params()
        made.use_extra_bufts = False  # AMX's matmul crashes on these machines, as in the engine
        return made

    llama_cpp.llama_cpp.llama_model_default_params = params
    try:
        llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=4096,
            n_threads=threads,
            n_threads_batch=threads,
            flash_attn=True,
            verbose=False,
        )
    finally:
        llama_cpp.llama_cpp.llama_model_default_params = default_params
    messages = [{"role": "user", "content": prompt}]
    results = [_bare_run(llama, messages, tokens) for _ in range(runs + 1)][1:]  # warm-up
    llama.close()
    return {
        "tok_s": sum(r["tokens"] for r in results) / sum(r["seconds"] for r in results),
        "ttft_ms": statistics.median(r["ttft"] for r in results) * 1000,
        "tokens": results[0]["tokens"],
    }


def _bare_run(llama, messages: list[dict], tokens: int) -> dict:
    # No reset between runs: Llama begins where its last prompt matches, as the engine
    # begins from the cells it kept.
    start = time.perf_counter()
    first, last, count = None, None, 0
    for chunk in llama.create_chat_completion(
        messages, max_tokens=tokens, temperature=0.0, stream=True
    ):
        if chunk["choices"][0]["delta"].get("content"):
            last = time.perf_counter()
            first = first or last
            count += 1
    return {"tokens": count, "seconds": last - start, "ttft": first - start}


async def later_turns(url: str, cookie: str, conversation_id: int, turns: int) -> list[float]:
    """One conversation, ``turns`` messages in a row: each turn's first-token seconds."""
    parent, ttfts = None, []
    for turn in range(turns):
        prompt = PROMPTS[turn % len(PROMPTS)]
        reply = await websocket_reply(url, cookie, conversation_id, prompt, parent=parent)
        parent = reply["id"]
        ttfts.append(reply["ttft"])
    return ttfts


def served(engine: str, args, threads: int, workdir: Path) -> tuple[dict[int, dict], list]:
    """The app on ``engine``: tok/s and p95 first-token time at each width, and the
    first-token seconds of each turn of a long conversation (mean of two)."""
    from tests.support.servers import asgi_server

    widths = args.widths
    count = 1 + args.rounds * sum(widths) + 2
    cookie, conversations = make_user(f"bench-{engine}", max_new_tokens=args.tokens, count=count)
    env = server_env(
        CHAT_MODEL="smollm2",
        INFERENCE_ENGINE=engine,
        MODEL_THREADS=str(threads),
        LLAMACPP_WEIGHTS=args.weights,
    )
    results, used = {}, 1
    with asgi_server(env, workdir / f"server-{engine}.log") as url:
        measure(url, cookie, conversations[:1], 1, 1)  # warm-up: the model loads
        for width in widths:
            chunk = conversations[used : used + args.rounds * width]
            used += len(chunk)
            results[width] = measure(url, cookie, chunk, width, args.rounds)
        runs = [
            asyncio.run(later_turns(url, cookie, conversation.pk, args.turns))
            for conversation in conversations[used : used + 2]
        ]
    return results, [statistics.mean(turn) for turn in zip(*runs, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--widths", default="1,8,16")
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--threads", type=int, default=0, help="0: one per core")
    parser.add_argument("--weights", help="file, q8_0 or f16 (default: LLAMACPP_WEIGHTS')")
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args()
    args.widths = [int(width) for width in args.widths.split(",")]
    threads = args.threads or os.cpu_count() or 1
    workdir = setup_django()
    from django.conf import settings

    from llm.engine.llamacpp_model import served_gguf

    args.weights = args.weights or settings.LLAMACPP_WEIGHTS
    gguf = served_gguf("smollm2", settings.MODEL_CACHE_DIR, args.weights)
    print(f"load_average_start: {os.getloadavg()[0]:.2f}")
    print(f"threads: {threads}")
    print(f"weights: {args.weights} ({gguf.name})")
    bare = bare_llamacpp(PROMPTS[0], args.tokens, args.rounds + 1, threads, gguf)
    print(f"bare_llamacpp_tokens: {bare['tokens']}")
    print(f"bare_llamacpp_tok_per_s: {bare['tok_s']:.2f}")
    print(f"bare_llamacpp_ttft_ms: {bare['ttft_ms']:.1f}")
    engines = ["llamacpp"] + ([] if args.skip_transformers else ["transformers"])
    figures = {}
    for engine in engines:
        figures[engine], turns = served(engine, args, threads, workdir)
        for width, result in figures[engine].items():
            print(f"{engine}_{width}_tok_per_s: {result['tok_s']:.2f}")
            print(f"{engine}_{width}_p95_ttft_ms: {result['p95_ttft_ms']:.1f}")
        print(f"{engine}_turn1_ttft_ms: {turns[0] * 1000:.1f}")
        print(f"{engine}_turn{len(turns)}_ttft_ms: {turns[-1] * 1000:.1f}")
    print(f"load_average_end: {os.getloadavg()[0]:.2f}")
    llama = figures["llamacpp"]
    single = llama[args.widths[0]]["tok_s"]
    for width in args.widths[1:]:
        print(f"llamacpp_{width}_vs_1: {llama[width]['tok_s'] / single:.3f}")
    if "transformers" in figures:
        today = figures["transformers"][args.widths[0]]["tok_s"]
        print(f"llamacpp_vs_transformers_1: {single / today:.3f}")
    print(f"engine_vs_llamacpp: {single / bare['tok_s']:.3f}")


if __name__ == "__main__":
    main()
