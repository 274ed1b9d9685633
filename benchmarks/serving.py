"""Serving backends: vLLM direct, vLLM through LoopChat, and LoopChat's embedded engine.

In one run, on the same prompts (greedy, the same token budget), over real sockets:

- direct streaming from a vLLM CPU server (the ``openai`` client) against the
  same replies received through LoopChat's websocket with
  ``INFERENCE_BACKEND=vllm``, at 1, 8 and 16 conversations;
- LoopChat's embedded engine (``INFERENCE_BACKEND=local``) at 1, 8 and 16;
- one conversation on each backend while a training run (``manage.py
  train_now``, niced as ``make run`` runs the training worker) is in progress.

    .venv/bin/python benchmarks/serving.py [--tokens 64] [--rounds 2]

Prints ``name: value`` lines and ends with ``vllm_stream_ratio`` (LoopChat-over-vLLM
tok/s ÷ direct vLLM tok/s at 8 conversations; target ≥ 0.95, and under 30 ms added
to the first token). Needs .venv-vllm (``scripts/lib.sh install_vllm``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.common import PROMPTS, make_user, server_env, setup_django, websocket_reply  # noqa: E402

WIDTHS = (1, 8, 16)


async def _direct_reply(client, prompt: str, tokens: int) -> dict:
    start = time.perf_counter()
    first = last = None
    count = 0
    stream = await client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=tokens,
        temperature=0.0,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter()
            first = first or last
        if chunk.usage is not None:
            count = chunk.usage.completion_tokens
    return {"tokens": count, "seconds": last - start, "ttft": first - start}


async def _round(replies) -> dict:
    start = time.perf_counter()
    results = await asyncio.gather(*replies)
    return {
        "tokens": sum(r["tokens"] for r in results),
        "seconds": time.perf_counter() - start,
        "ttfts": [r["ttft"] for r in results],
    }


def _summary(rounds: list[dict]) -> dict:
    tokens = sum(r["tokens"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    ttfts = [t for r in rounds for t in r["ttfts"]]
    return {"tok_s": tokens / seconds, "ttft_ms": statistics.median(ttfts) * 1000}


def direct(vllm_url: str, width: int, rounds: int, tokens: int) -> dict:
    import openai

    async def run() -> list[dict]:
        client = openai.AsyncOpenAI(base_url=f"{vllm_url}/v1", api_key="EMPTY", max_retries=0)
        done = []
        for _ in range(rounds):
            prompts = [PROMPTS[i % len(PROMPTS)] for i in range(width)]
            done.append(await _round(_direct_reply(client, p, tokens) for p in prompts))
        await client.close()
        return done

    return _summary(asyncio.run(run()))


class Conversations:
    """Fresh conversations (greedy, ``tokens`` each) handed out in order."""

    def __init__(self, count: int, tokens: int):
        self.cookie, self._free = make_user("bench", max_new_tokens=tokens, count=count)

    def take(self, count: int) -> list[int]:
        taken, self._free = self._free[:count], self._free[count:]
        return [conversation.pk for conversation in taken]


def through(url: str, conversations: Conversations, width: int, rounds: int) -> dict:
    async def run() -> list[dict]:
        done = []
        for _ in range(rounds):
            ids = conversations.take(width)
            replies = (
                websocket_reply(url, conversations.cookie, cid, PROMPTS[i % len(PROMPTS)])
                for i, cid in enumerate(ids)
            )
            done.append(await _round(replies))
        return done

    return _summary(asyncio.run(run()))


def _print(name: str, figures: dict) -> None:
    print(f"{name}_tok_per_s: {figures['tok_s']:.2f}", flush=True)
    print(f"{name}_ttft_ms: {figures['ttft_ms']:.1f}", flush=True)


def _training(workdir: Path, env: dict[str, str]) -> subprocess.Popen:
    """A real run in progress: 40 approved pairs, ``train_now`` niced as make run does."""
    from django.contrib.auth import get_user_model

    from tests.llm_tests.training.synthetic import polite_pairs
    from tests.support.factories import pairs_stored
    from training.models import TrainingRun

    users = get_user_model().objects
    alice = users.create_user("alice", password="alice-password-1")
    staff = users.create_superuser("carol", password="carol-password-1")
    pairs_stored(alice, staff, polite_pairs(0, 40))
    log = (workdir / "train.log").open("w")
    process = subprocess.Popen(
        [
            "nice",
            "-n",
            os.environ.get("TRAINING_NICE", "15"),
            sys.executable,
            "manage.py",
            "train_now",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # until a training stage is stepping
        run = TrainingRun.objects.first()
        if run and run.status == "running" and run.step >= 1:
            return process
        time.sleep(1)
    raise RuntimeError(f"no training step within 10 minutes; see {workdir / 'train.log'}")


def _still_training() -> bool:
    from training.models import TrainingRun

    return TrainingRun.objects.get().status == "running"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    workdir = setup_django()
    from llm.loading import prepare_embedded_model
    from tests.support.servers import asgi_server
    from tests.support.vllm import vllm_server

    model = prepare_embedded_model(REPO / ".cache" / "models")
    rounds, tokens = options.rounds, options.tokens
    conversations = Conversations(2 * rounds * (1 + sum(WIDTHS)) + 8, tokens)
    figures: dict[str, dict] = {}
    with vllm_server(model, workdir / "vllm.log") as (vllm_url, _):
        local_env = server_env(CHAT_MODEL=str(model), MODEL_VERSIONS_DIR=str(workdir / "v"))
        vllm_env = {**local_env, "INFERENCE_BACKEND": "vllm", "VLLM_URLS": vllm_url}
        with (
            asgi_server(vllm_env, workdir / "web-vllm.log") as via_url,
            asgi_server(local_env, workdir / "web-local.log") as local_url,
        ):
            direct(vllm_url, 1, 1, tokens)  # warm-ups
            through(via_url, conversations, 1, 1)
            through(local_url, conversations, 1, 1)
            for width in WIDTHS:
                figures[f"vllm_direct_{width}"] = direct(vllm_url, width, rounds, tokens)
                _print(f"vllm_direct_{width}", figures[f"vllm_direct_{width}"])
                figures[f"vllm_loopchat_{width}"] = through(via_url, conversations, width, rounds)
                _print(f"vllm_loopchat_{width}", figures[f"vllm_loopchat_{width}"])
            for width in WIDTHS:
                figures[f"embedded_{width}"] = through(local_url, conversations, width, rounds)
                _print(f"embedded_{width}", figures[f"embedded_{width}"])
            training = _training(workdir, local_env)
            try:
                figures["embedded_training"] = through(local_url, conversations, 1, rounds)
                figures["vllm_loopchat_training"] = through(via_url, conversations, 1, rounds)
                print(f"training_still_running: {str(_still_training()).lower()}")
            finally:
                training.terminate()
                training.wait()
    for name in ("embedded", "vllm_loopchat"):
        during = figures[f"{name}_training"]
        _print(f"{name}_while_training", during)
        ratio = during["tok_s"] / figures[f"{name}_1"]["tok_s"]
        print(f"{name}_training_ratio: {ratio:.3f}")
    for width in WIDTHS:
        ratio = figures[f"embedded_{width}"]["tok_s"] / figures[f"vllm_direct_{width}"]["tok_s"]
        print(f"embedded_over_vllm_{width}: {ratio:.3f}")
    for width in (1, 8):
        added = (
            figures[f"vllm_loopchat_{width}"]["ttft_ms"]
            - figures[f"vllm_direct_{width}"]["ttft_ms"]
        )
        print(f"first_token_added_ms_{width}: {added:.1f}")
    ratio = figures["vllm_loopchat_8"]["tok_s"] / figures["vllm_direct_8"]["tok_s"]
    print(f"vllm_stream_ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
