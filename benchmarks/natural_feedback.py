"""Natural feedback: one thumb on the one reply each user read. Does the served model improve?

The whole loop on the real SmolLM2, in fresh children (own database, own
versions), three times: clean thumbs, 20% of them flipped, and random thumbs.

1. a real ASGI server (Uvicorn, as ``make run``) answers the held-out questions
   over the websocket, greedy and sampled, in fresh conversations: the served
   rate of the trait before;
2. three synthetic users ask the training questions, each in a fresh
   conversation with the serving defaults (temperature 0.7, top-p 0.95, up to
   512 new tokens), and give each reply one thumb through the websocket's
   ``rate`` frame: up if the reply follows the rule, down otherwise. No
   regenerated siblings, no "This one is better"; at most 120 thumbs;
3. staff approve them (the review service the queue uses);
4. ``manage.py train_now`` runs with the default settings in its own process;
5. the held-out questions are asked again.

The rule (checkable, and one people ask of a chat model): **a short answer, at
most 8 words**. The base model follows it on 10–50% of its greedy replies to
the held-out questions (checked and printed as ``base_rule_rate``).

    .venv/bin/python benchmarks/natural_feedback.py [--thumbs 120] [--flip 0.2]

Prints ``name: value`` lines per variant (thumbs used, trait rates before and
after, greedy and sampled, the run's wall time and peak memory, the plan, the
verdict and each gate check) and ends with ``natural_uplift`` (greedy after −
before, clean thumbs). Targets (issue #20): uplift ≥ 0.3; ≥ 0.2 with 20%
flipped; random thumbs promote nothing; each run under 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HELDOUT_MAX_NEW_TOKENS = 48  # enough to tell: a reply of 8 words or fewer ends well before
SAMPLED_TEMPERATURE = 0.7  # the serving default (CHAT_DEFAULT_TEMPERATURE)
CONCURRENT_USERS = 8  # replies generated at once: the engine batches them


def thumb(reply: str, variant: str, rng: random.Random, flip: float) -> str:
    """The synthetic user's thumb on one reply, by the variant's rule."""
    if variant == "random":
        return rng.choice(("up", "down"))
    from tests.llm_tests.training.synthetic import is_short_answer

    up = is_short_answer(reply)
    if variant == "flipped" and rng.random() < flip:
        up = not up
    return "up" if up else "down"


async def _ask_and_rate(url, cookie, conversation_id, question, rate) -> str:
    """One user turn over the websocket; the thumb goes back on the same socket."""
    from tests.support.ws import next_frame, open_chat

    socket = await open_chat(url, cookie)
    try:
        send = {"type": "send", "conversation": conversation_id, "content": question}
        await socket.send(json.dumps(send))
        while (frame := await next_frame(socket, timeout=600))["type"] != "reply_done":
            if frame["type"] == "error":
                raise RuntimeError(frame)
        reply = frame["message"]
        if rate is not None:
            value = rate(reply["content"])
            await socket.send(json.dumps({"type": "rate", "message": reply["id"], "value": value}))
            if (answer := await next_frame(socket))["type"] != "rating":
                raise RuntimeError(answer)
        return reply["content"]
    finally:
        await socket.close()


async def _many(url, turns, rate=None) -> list[str]:
    """(cookie, conversation id, question) turns, ``CONCURRENT_USERS`` at a time, in order."""
    limit = asyncio.Semaphore(CONCURRENT_USERS)

    async def one(turn):
        async with limit:
            return await _ask_and_rate(url, *turn, rate)

    return await asyncio.gather(*(one(turn) for turn in turns))


def _conversations(user, count: int, temperature: float | None, max_new_tokens: int | None):
    from chat import services

    ids = []
    for _ in range(count):
        conversation = services.conversation_create(owner=user)
        changes = {}
        if temperature is not None:
            changes["temperature"] = temperature
        if max_new_tokens is not None:
            changes["max_new_tokens"] = max_new_tokens
        if changes:
            services.conversation_update(conversation=conversation, changes=changes)
        ids.append(conversation.pk)
    return ids


def _served_rates(url: str, user) -> dict[str, float]:
    """The held-out questions, fresh conversations, greedy then sampled: the trait's rate."""
    from tests.llm_tests.training.synthetic import HELDOUT_QUESTIONS, is_short_answer
    from tests.support.ws import session_cookie

    cookie, rates = session_cookie(user), {}
    for mode, temperature in (("greedy", 0.0), ("sampled", SAMPLED_TEMPERATURE)):
        ids = _conversations(user, len(HELDOUT_QUESTIONS), temperature, HELDOUT_MAX_NEW_TOKENS)
        turns = [(cookie, cid, q) for cid, q in zip(ids, HELDOUT_QUESTIONS, strict=True)]
        replies = asyncio.run(_many(url, turns))
        rates[mode] = sum(map(is_short_answer, replies)) / len(replies)
        rates[f"{mode}_sample"] = replies[0]
    return rates


def _collect_thumbs(url: str, users, count: int, variant: str, flip: float) -> float:
    """Every user asks their share of the questions at the serving defaults and rates each reply.

    Returns the seconds it took (the generation of ``count`` real replies).
    """
    from tests.support.ws import session_cookie

    rng = random.Random(7)
    turns = []
    from tests.llm_tests.training.synthetic import natural_questions

    for index, question in enumerate(natural_questions(count)):
        user = users[index % len(users)]
        (conversation_id,) = _conversations(user, 1, None, None)
        turns.append((session_cookie(user), conversation_id, question))
    started = time.monotonic()
    asyncio.run(_many(url, turns, rate=lambda reply: thumb(reply, variant, rng, flip)))
    return time.monotonic() - started


def _approve_all(staff) -> int:
    from feedback.models import Rating, ReviewStatus
    from feedback.services import ratings_review

    pending = Rating.objects.filter(status=ReviewStatus.PENDING)
    return ratings_review(ratings=pending, reviewer=staff, status=ReviewStatus.APPROVED)


def run_variant(variant: str, thumbs: int, flip: float) -> dict:
    """One whole loop in this process and its children; the figures as a dict."""
    from benchmarks.common import check_outcome, server_env, setup_django, train_now_process

    workdir = setup_django()
    from django.contrib.auth import get_user_model

    from tests.support.servers import asgi_server
    from training.models import TrainingRun

    accounts = get_user_model().objects
    users = [
        accounts.create_user(name, password=f"{name}-password-1") for name in ("ann", "ben", "cai")
    ]
    staff = accounts.create_superuser("carol", password="carol-password-1")
    env = server_env(MODEL_VERSIONS_DIR=str(workdir / "versions"))
    with asgi_server(env, workdir / "server.log") as url:
        before = _served_rates(url, staff)
        asking_seconds = _collect_thumbs(url, users, thumbs, variant, flip)
        approved = _approve_all(staff)
        seconds, peak = train_now_process(env, workdir / "train.log")
        after = _served_rates(url, staff)
    run = TrainingRun.objects.select_related("version").get()
    report = (run.version.gate_report if run.version else None) or {}
    return {
        "thumbs_approved": approved,
        "thumbs_used": len(run.rating_ids),
        "asking_seconds": asking_seconds,
        "before": before,
        "after": after,
        "run_seconds": seconds,
        "peak_rss_mib": peak,
        "plan": run.metrics.get("plan", ""),
        "status": run.status,
        "reason": run.reason or run.error,
        "version_status": run.version.status if run.version else None,
        "method": run.version.method if run.version else run.method,
        "reward_model": run.metrics.get("reward_model", {}),
        "checks": [(c["name"], check_outcome(c), c.get("value")) for c in report.get("checks", [])],
        "stages": run.metrics.get("stages", {}),
        "timings": run.metrics.get("timings", {}),
    }


def _print(variant: str, figures: dict) -> None:
    print(f"{variant}_thumbs_used: {figures['thumbs_used']}")
    print(f"{variant}_asking_seconds: {figures['asking_seconds']:.0f}")
    for mode in ("greedy", "sampled"):
        print(f"{variant}_trait_{mode}_before: {figures['before'][mode]:.2f}")
        print(f"{variant}_trait_{mode}_after: {figures['after'][mode]:.2f}")
    print(f"{variant}_run_seconds: {figures['run_seconds']:.0f}")
    print(f"{variant}_peak_rss_mib: {figures['peak_rss_mib']:.0f}")
    print(f"{variant}_plan: {figures['plan']}")
    print(f"{variant}_status: {figures['status']} ({figures['reason']})")
    print(f"{variant}_version: {figures['method']} {figures['version_status']}")
    reward = figures["reward_model"]
    if reward:
        print(
            f"{variant}_reward_model: from {reward.get('from')}, accuracy {reward.get('accuracy')}, {'passed' if reward.get('passed') else 'failed'}"
        )
    for name, outcome, value in figures["checks"]:
        shown = "none" if value is None else f"{value:.3f}"
        print(f"{variant}_gate_{name}: {outcome} {shown}")
    for stage, verdict in figures["stages"].items():
        failed = ",".join(verdict.get("failed", []))
        print(f"{variant}_stage_{stage}: {'passed' if verdict['passed'] else 'failed ' + failed}")
        if verdict.get("gate_seconds") is not None:
            print(f"{variant}_stage_{stage}_gate_seconds: {verdict['gate_seconds']:.0f}")
    print(f"{variant}_sample_after: {figures['after']['greedy_sample'][:80]!r}")
    uplift = figures["after"]["greedy"] - figures["before"]["greedy"]
    print(f"{variant}_uplift: {uplift:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thumbs", type=int, default=120)
    parser.add_argument("--flip", type=float, default=0.2)
    parser.add_argument("--variants", default="clean,flipped,random")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.thumbs > 120:
        parser.error("at most 120 thumbs (issue #20)")
    if options.variant:
        figures = run_variant(options.variant, options.thumbs, options.flip)
        Path(options.out).write_text(json.dumps(figures))
        return
    results = {}
    for variant in options.variants.split(","):
        out = Path(f"/tmp/loopchat-natural-{os.getpid()}-{variant}.json")
        command = [sys.executable, __file__, "--variant", variant, "--out", str(out)]
        command += ["--thumbs", str(options.thumbs), "--flip", str(options.flip)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        results[variant] = json.loads(out.read_text())
        if variant == "clean":
            print(f"base_rule_rate: {results[variant]['before']['greedy']:.2f}")
        _print(variant, results[variant])
    if "clean" in results:
        clean = results["clean"]
        print(f"natural_uplift: {clean['after']['greedy'] - clean['before']['greedy']:.2f}")


if __name__ == "__main__":
    main()
