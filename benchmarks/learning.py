"""Visible learning: does feedback change what the served model writes?

The whole loop on the real SmolLM2, twice (clean labels, then 20% of them
flipped at random), each in a fresh child with its own database and versions:

1. a real ASGI server (Uvicorn, as ``make run``) serves 20 held-out questions
   no feedback asks, over the websocket, greedy and sampled (the serving
   defaults: temperature 0.7, top-p 0.95), in fresh conversations;
2. 40 synthetic preference pairs whose preferred reply opens with "Happy to
   help!" are stored as served replies, chosen by a user and approved by staff
   (tests/llm_tests/training/synthetic.py);
3. ``manage.py train_now`` runs with the default settings in its own process
   (its wall time and peak RSS are the run's);
4. the same questions are asked again through the same server.

    .venv/bin/python benchmarks/learning.py [--pairs 40] [--flip 0.2]

Prints ``name: value`` lines per variant: ratings used, trait rates before
and after (greedy and sampled), the run's wall time, peak memory, status, the
stage promoted and each gate check; ends with ``learning_uplift`` (greedy trait
rate after − before, clean labels). Targets (docs/training.md): uplift ≥ 0.6
with ≤ 64 ratings, the run under 15 minutes on the 2-core CPU; flipped uplift
≥ 0.4, or the run rejected.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYSTEM_PROMPT = "You are a helpful, concise assistant."
SAMPLED_TEMPERATURE = 0.7  # the serving default (CHAT_DEFAULT_TEMPERATURE)
MAX_NEW_TOKENS = 48


def flipped(rows: list[dict], share: float, seed: int = 0) -> list[dict]:
    """``rows`` with ``share`` of them (chosen at random) choosing the other reply."""
    picked = set(random.Random(seed).sample(range(len(rows)), round(share * len(rows))))
    return [
        {**row, "chosen": row["rejected"], "rejected": row["chosen"]} if index in picked else row
        for index, row in enumerate(rows)
    ]


async def _served(url: str, cookie: str, conversation_ids: list[int], questions) -> list[str]:
    from benchmarks.common import websocket_reply

    replies = []
    for conversation_id, question in zip(conversation_ids, questions, strict=True):
        replies.append((await websocket_reply(url, cookie, conversation_id, question))["text"])
    return replies


def _ask_all(url: str, user, questions) -> dict[str, list[str]]:
    """Every question in a fresh conversation (the default system prompt), greedy and sampled."""
    from chat import services
    from tests.support.ws import session_cookie

    replies = {}
    for mode, temperature in (("greedy", 0.0), ("sampled", SAMPLED_TEMPERATURE)):
        ids = []
        for _ in questions:
            conversation = services.conversation_create(owner=user)
            changes = {"temperature": temperature, "max_new_tokens": MAX_NEW_TOKENS}
            services.conversation_update(conversation=conversation, changes=changes)
            ids.append(conversation.pk)
        replies[mode] = asyncio.run(_served(url, session_cookie(user), ids, questions))
    return replies


def _rates(replies: dict[str, list[str]]) -> dict[str, float]:
    from tests.llm_tests.training.synthetic import has_friendly_opening

    return {
        mode: sum(map(has_friendly_opening, texts)) / len(texts) for mode, texts in replies.items()
    }


def run_variant(variant: str, pairs: int, flip: float) -> dict:
    """One whole loop in this process and its children; the figures as a dict."""
    from benchmarks.common import check_outcome, server_env, setup_django, train_now_process

    workdir = setup_django()
    os.environ["MODEL_VERSIONS_DIR"] = str(workdir / "versions")
    from django.contrib.auth import get_user_model
    from django.test.utils import override_settings

    from tests.llm_tests.training.synthetic import HELDOUT_QUESTIONS, polite_pairs
    from tests.support.factories import pairs_stored
    from tests.support.servers import asgi_server
    from training.models import TrainingRun

    users = get_user_model().objects
    alice = users.create_user("alice", password="alice-password-1")
    staff = users.create_superuser("carol", password="carol-password-1")
    env = server_env(
        MODEL_VERSIONS_DIR=str(workdir / "versions"), CHAT_RATE_LIMIT_MESSAGES="100000"
    )
    rows = polite_pairs(0, pairs)
    rows = flipped(rows, flip) if variant == "flipped" else rows
    with asgi_server(env, workdir / "server.log") as url:
        before = _ask_all(url, alice, HELDOUT_QUESTIONS)
        with override_settings(MODEL_VERSIONS_DIR=workdir / "versions"):
            pairs_stored(alice, staff, rows, system_prompt=SYSTEM_PROMPT)
        seconds, peak = train_now_process(env, workdir / "train.log")
        after = _ask_all(url, alice, HELDOUT_QUESTIONS)
    run = TrainingRun.objects.select_related("version").get()
    report = run.version.gate_report if run.version else {}
    return {
        "ratings_used": len(run.pair_ids) + len(run.rating_ids),
        "flipped_share": flip if variant == "flipped" else 0.0,
        "before": _rates(before),
        "after": _rates(after),
        "run_seconds": seconds,
        "peak_rss_mib": peak,
        "status": run.status,
        "method": run.version.method if run.version else run.method,
        "checks": [(c["name"], check_outcome(c), c["value"]) for c in report.get("checks", [])],
        "stages": run.metrics.get("stages", {}),
        "sample_after": after["greedy"][0],
    }


def _print(variant: str, figures: dict) -> None:
    for key in ("ratings_used", "flipped_share"):
        print(f"{variant}_{key}: {figures[key]}")
    for mode in ("greedy", "sampled"):
        print(f"{variant}_trait_{mode}_before: {figures['before'][mode]:.2f}")
        print(f"{variant}_trait_{mode}_after: {figures['after'][mode]:.2f}")
    print(f"{variant}_run_seconds: {figures['run_seconds']:.0f}")
    print(f"{variant}_peak_rss_mib: {figures['peak_rss_mib']:.0f}")
    print(f"{variant}_status: {figures['status']}")
    print(f"{variant}_promoted_stages: {figures['method']}")
    for name, outcome, value in figures["checks"]:
        shown = "none" if value is None else f"{value:.3f}"
        print(f"{variant}_gate_{name}: {outcome} {shown}")
    for stage, verdict in figures["stages"].items():
        win = verdict.get("generated_win_rate")
        rewards = (
            verdict.get("parent_greedy_reward_mean"),
            verdict.get("candidate_greedy_reward_mean"),
        )
        print(
            f"{variant}_stage_{stage}: {'passed' if verdict['passed'] else 'failed ' + ','.join(verdict['failed'])}"
        )
        if win is not None:
            print(f"{variant}_stage_{stage}_generated_win_rate: {win:.2f}")
        if verdict.get("gate_seconds") is not None:
            print(f"{variant}_stage_{stage}_gate_seconds: {verdict['gate_seconds']:.0f}")
        if None not in rewards:
            print(f"{variant}_stage_{stage}_greedy_reward: {rewards[0]:.2f} -> {rewards[1]:.2f}")
    print(f"{variant}_sample_after: {figures['sample_after'][:80]!r}")
    uplift = figures["after"]["greedy"] - figures["before"]["greedy"]
    print(f"{variant}_uplift: {uplift:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--flip", type=float, default=0.2)
    parser.add_argument("--variant", choices=("clean", "flipped"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.variant:  # a child of the run below, or one variant by hand (printed)
        figures = run_variant(options.variant, options.pairs, options.flip)
        if options.out:
            Path(options.out).write_text(json.dumps(figures))
        else:
            _print(options.variant, figures)
        return
    results = {}
    for variant in ("clean", "flipped"):
        out = Path(f"/tmp/loopchat-learning-{os.getpid()}-{variant}.json")
        command = [sys.executable, __file__, "--variant", variant, "--out", str(out)]
        command += ["--pairs", str(options.pairs), "--flip", str(options.flip)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        results[variant] = json.loads(out.read_text())
        _print(variant, results[variant])
    clean = results["clean"]
    print(f"learning_uplift: {clean['after']['greedy'] - clean['before']['greedy']:.2f}")


if __name__ == "__main__":
    main()
