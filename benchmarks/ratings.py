"""Rating throughput: many clients rate and re-rate replies against a running server.

PostgreSQL (``DATABASE_URL``, default the local ``loopchat_bench`` database).
Each client holds one websocket and sends ``rate`` frames back to back (up,
down, clear, with reasons), timing each until its ``rating`` answer. The
baseline in the same run is ``ping`` over the same sockets: the transport's
ceiling. At the end the database must hold exactly what the clients were told.
Ends with ``ratings_per_s: <value>``.
Usage: python benchmarks/ratings.py [--clients 32] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loopchat_bench")
from benchmarks.common import percentile, server_env, setup_django  # noqa: E402

VALUES = ["up", "down", None]
REASONS = {
    "up": [["helpful"], ["accurate", "well_written"], []],
    "down": [["wrong"], ["too_long", "unhelpful"], []],
    None: [None],
}


def ensure_database() -> None:
    """Create the benchmark database once (PostgreSQL only)."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    if not url.startswith("postgres"):
        return
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def make_clients(count: int, replies_each: int) -> list[tuple[str, list[int], int]]:
    """(session cookie, reply ids, user id) per client; each owns one conversation."""
    from django.contrib.auth import get_user_model

    from chat import services
    from feedback.models import Rating
    from tests.support.factories import exchange
    from tests.support.ws import session_cookie

    Rating.objects.all().delete()
    clients = []
    stamp = int(time.time())
    for index in range(count):
        user = get_user_model().objects.create_user(f"rater-{stamp}-{index}", password="x-pass-1")
        conversation = services.conversation_create(owner=user)
        parent, reply_ids = None, []
        for turn in range(replies_each):
            # Every fourth turn has a regenerated sibling, so pairs get derived too.
            answers = ["An answer.", "Another answer."] if turn % 4 == 0 else ["An answer."]
            _, replies = exchange(conversation, f"Question {turn}", answers, parent=parent)
            parent = replies[0]
            reply_ids += [reply.pk for reply in replies]
        clients.append((session_cookie(user), reply_ids, user.pk))
    return clients


async def run_client(url, cookie, reply_ids, deadline, frame_kind, results, told):
    from tests.support.ws import open_chat

    socket = await open_chat(url, cookie)
    rng = random.Random(cookie)
    latencies, ok = results["latencies"], 0
    for step in itertools.count():
        if time.perf_counter() >= deadline:
            break
        if frame_kind == "ping":
            frame = {"type": "ping"}
        else:
            reply, value = rng.choice(reply_ids), VALUES[step % 3]
            frame = {
                "type": "rate",
                "message": reply,
                "value": value,
                "reasons": rng.choice(REASONS[value]),
            }
        start = time.perf_counter()
        await socket.send(json.dumps(frame))
        answer = json.loads(await socket.recv())
        while answer["type"] == "engine":
            answer = json.loads(await socket.recv())
        latencies.append(time.perf_counter() - start)
        if answer["type"] == "error":
            results["errors"] += 1
            continue
        ok += 1
        if frame_kind == "rate":
            told[(cookie, frame["message"])] = answer["rating"]
    results["ok"] += ok
    await socket.close()


async def load(url, clients, seconds, frame_kind, told):
    results = {"latencies": [], "ok": 0, "errors": 0}
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    await asyncio.gather(
        *[
            run_client(url, cookie, replies, deadline, frame_kind, results, told)
            for cookie, replies, _ in clients
        ]
    )
    results["seconds"] = time.perf_counter() - start
    return results


def database_matches(clients, told) -> tuple[int, int]:
    """(rows the clients were told exist, of those: rows the database holds as told).

    -1 when the database holds a rating the clients were told is cleared or
    never made.
    """
    from feedback.models import Rating

    user_of = {cookie: user_id for cookie, _, user_id in clients}
    stored = {
        (rating.user_id, rating.message_id): rating
        for rating in Rating.objects.filter(user_id__in=user_of.values())
    }
    expected = {
        (user_of[cookie], message_id): value
        for (cookie, message_id), value in told.items()
        if value is not None
    }
    if set(stored) != set(expected):
        return len(expected), -1
    matching = sum(
        ("up" if stored[key].is_up else "down") == value["value"]
        and stored[key].reasons == value["reasons"]
        for key, value in expected.items()
    )
    return len(expected), matching


def pairs_consistent(clients) -> bool:
    """Whether the derived pairs are exactly what the stored ratings imply.

    Nobody reviews during the run, so every rating and pair is pending.
    """
    from feedback.models import PreferencePair, Rating

    users = [user_id for _, _, user_id in clients]
    ratings = Rating.objects.filter(user_id__in=users).values_list(
        "user_id", "message_id", "message__parent_id", "value", "status"
    )
    expected = {
        (user, up_id, down_id, "pending")
        for user, up_id, prompt, up_value, up_status in ratings
        for other, down_id, other_prompt, down_value, down_status in ratings
        if (user, prompt) == (other, other_prompt)
        and (up_value, down_value) == (1, -1)
        and up_status == down_status == "pending"
    }
    stored = PreferencePair.objects.filter(
        user_id__in=users, source=PreferencePair.Source.DERIVED
    ).values_list("user_id", "chosen_id", "rejected_id", "status")
    return set(stored) == expected and len(stored) == len(expected)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--replies", type=int, default=8)
    args = parser.parse_args()
    ensure_database()
    workdir = setup_django()
    from tests.support.servers import asgi_server

    clients = make_clients(args.clients, args.replies)
    env = server_env(ENGINE_PRELOAD="0", DATABASE_CONN_MAX_AGE="600", LOG_LEVEL="WARNING")
    with asgi_server(env, workdir / "server.log") as url:
        told: dict = {}  # (client, reply) -> the rating the server last confirmed
        asyncio.run(load(url, clients, 2, "ping", told))  # warm-up: connections, code paths
        pings = asyncio.run(load(url, clients, args.seconds, "ping", told))
        asyncio.run(load(url, clients, 2, "rate", told))
        rates = asyncio.run(load(url, clients, args.seconds, "rate", told))
    expected, matching = database_matches(clients, told)
    ping_rate = pings["ok"] / pings["seconds"]
    rating_rate = rates["ok"] / rates["seconds"]
    print(f"clients: {args.clients}")
    print(f"ping_per_s: {ping_rate:.0f}")
    print(f"ping_p99_ms: {percentile(pings['latencies'], 0.99) * 1000:.1f}")
    print(f"ratings_total: {rates['ok']}")
    print(f"rating_errors: {rates['errors']}")
    print(f"rating_p50_ms: {percentile(rates['latencies'], 0.50) * 1000:.1f}")
    print(f"rating_p99_ms: {percentile(rates['latencies'], 0.99) * 1000:.1f}")
    print(f"ratings_expected_in_db: {expected}")
    print(f"ratings_matching_in_db: {matching}")
    pairs_right = pairs_consistent(clients)
    print(f"pairs_consistent: {str(pairs_right).lower()}")
    nothing_lost = matching == expected and rates["errors"] == 0 and pairs_right
    print(f"nothing_lost: {str(nothing_lost).lower()}")
    print(f"ratings_per_s: {rating_rate:.0f}")


if __name__ == "__main__":
    main()
