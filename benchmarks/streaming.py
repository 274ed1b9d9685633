"""Streaming overhead: bare ``model.generate`` against the same reply over the websocket.

Same model, same prompt, greedy decoding, same number of new tokens, on the
transformers engine (the server is told so: llama.cpp, the embedded model's
default, is compared with bare llama.cpp by benchmarks/engine.py). Prints the
figures one per line and ends with ``stream_ratio: <ws tok/s / bare tok/s>``.
Usage: python benchmarks/streaming.py [--tokens 64] [--runs 3] [--model smollm2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import PROMPTS, make_user, server_env, setup_django, websocket_reply  # noqa: E402


def bare_generate(model_name: str, prompt: str, tokens: int, runs: int) -> dict:
    import torch
    from django.conf import settings
    from transformers.generation.streamers import BaseStreamer

    from llm.loading import load_model

    loaded = load_model(model_name, settings.MODEL_CACHE_DIR, "cpu")
    messages = [{"role": "user", "content": prompt}]
    inputs = loaded.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )

    class FirstToken(BaseStreamer):
        def __init__(self):
            self.calls, self.first = 0, None

        def put(self, value):
            self.calls += 1
            if self.calls == 2:  # the first call carries the prompt
                self.first = time.perf_counter()

        def end(self):
            pass

    results = []
    for _ in range(runs + 1):  # the first run warms up
        streamer = FirstToken()
        start = time.perf_counter()
        with torch.inference_mode():
            output = loaded.model.generate(
                **inputs, max_new_tokens=tokens, do_sample=False, streamer=streamer
            )
        elapsed = time.perf_counter() - start
        new = output[0, inputs["input_ids"].shape[1] :]
        results.append(
            {
                "tokens": len(new),
                "seconds": elapsed,
                "ttft": streamer.first - start,
                "text": loaded.tokenizer.decode(new, skip_special_tokens=True),
            }
        )
    return _summary(results[1:])


def _summary(results: list[dict]) -> dict:
    return {
        "tokens": results[0]["tokens"],
        "tok_s": statistics.median(r["tokens"] / r["seconds"] for r in results),
        "ttft_ms": statistics.median(r["ttft"] for r in results) * 1000,
        "text": results[0]["text"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="smollm2")
    args = parser.parse_args()
    workdir = setup_django()
    from tests.support.servers import asgi_server

    prompt = PROMPTS[0]
    bare = bare_generate(args.model, prompt, args.tokens, args.runs)
    cookie, conversations = make_user("bench", max_new_tokens=args.tokens, count=args.runs + 1)
    # The transformers engine, as bare generate: llama.cpp's websocket against bare
    # llama.cpp is benchmarks/engine.py's engine_vs_llamacpp.
    env = server_env(CHAT_MODEL=args.model, INFERENCE_ENGINE="transformers")
    with asgi_server(env, workdir / "server.log") as url:
        runs = [
            asyncio.run(websocket_reply(url, cookie, conversation.pk, prompt))
            for conversation in conversations
        ]
    served = _summary(runs[1:])
    print(f"bare_tokens: {bare['tokens']}")
    print(f"websocket_tokens: {served['tokens']}")
    print(f"same_text: {str(bare['text'] == served['text']).lower()}")
    print(f"bare_tok_per_s: {bare['tok_s']:.2f}")
    print(f"websocket_tok_per_s: {served['tok_s']:.2f}")
    print(f"bare_ttft_ms: {bare['ttft_ms']:.1f}")
    print(f"websocket_ttft_ms: {served['ttft_ms']:.1f}")
    print(f"first_token_overhead_ms: {served['ttft_ms'] - bare['ttft_ms']:.1f}")
    print(f"stream_ratio: {served['tok_s'] / bare['tok_s']:.3f}")


if __name__ == "__main__":
    main()
