"""The review queue under a real backlog: 10,000 pending ratings in PostgreSQL.

A staff client, over HTTP against a real Uvicorn server, does what a reviewer
does all day: opens the focus page, then for each rating approves or excludes
it, steps to the next, now and then goes back or undoes. Every request is
timed. The baseline, in the same run and on the same connection, is the
cheapest authenticated JSON endpoint (``GET /api/profile/``).
Ends with ``review_p95_ms: <p95 of page loads and actions>`` (target: < 150).
Usage: python benchmarks/review.py [--pending 10000] [--decisions 300]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loopchat_bench")
from benchmarks.common import percentile, server_env, setup_django  # noqa: E402
from benchmarks.ratings import ensure_database  # noqa: E402


def seed(pending: int) -> tuple[str, str]:
    """``pending`` ratings of 100 users on replies with siblings; a staff session cookie."""
    from django.contrib.auth import get_user_model

    from chat.models import Conversation, Message
    from feedback.models import Rating, ReviewAction
    from tests.support.ws import session_cookie

    User = get_user_model()
    ReviewAction.objects.all().delete()
    Rating.objects.all().delete()
    stamp = int(time.time())
    users = User.objects.bulk_create(
        User(username=f"rater-{stamp}-{index}") for index in range(100)
    )
    conversations = Conversation.objects.bulk_create(
        Conversation(owner=user, title="Bench", temperature=0.7, top_p=0.95, max_new_tokens=64)
        for user in users
    )
    per_user = pending // len(users) // 2 + 1
    questions = Message.objects.bulk_create(
        Message(conversation=conversation, role="user", content=f"Question {index}?")
        for conversation in conversations
        for index in range(per_user)
    )
    prompt = [{"role": "system", "content": "Be brief."}]
    replies = Message.objects.bulk_create(
        Message(
            conversation_id=question.conversation_id,
            parent=question,
            role="assistant",
            content=f"Answer {side} with `code` and **bold** text.",
            model_version="base",
            prompt_messages=[*prompt, {"role": "user", "content": question.content}],
        )
        for question in questions
        for side in ("a", "b")
    )
    owner = {conversation.pk: conversation.owner_id for conversation in conversations}
    Rating.objects.bulk_create(
        (
            Rating(
                user_id=owner[reply.conversation_id],
                message=reply,
                value=1 if index % 3 else -1,
                reasons=["helpful"] if index % 3 else ["wrong", "too_long"],
                comment="" if index % 5 else "A comment.",
                model_version="base",
            )
            for index, reply in enumerate(replies[:pending])
        ),
        batch_size=2000,
    )
    staff = User.objects.create_user(f"reviewer-{stamp}", password="x-pass-1", is_staff=True)
    return session_cookie(staff), str(Rating.objects.filter(status="pending").count())


def timed(client, method: str, url: str, **kwargs) -> tuple[float, dict | None]:
    start = time.perf_counter()
    response = client.request(method, url, **kwargs)
    elapsed = (time.perf_counter() - start) * 1000
    response.raise_for_status()
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return elapsed, response.json() if is_json else None


def review_day(client, decisions: int) -> dict[str, list[float]]:
    """The reviewer's session; milliseconds per kind of request."""
    rng = random.Random(0)
    times: dict[str, list[float]] = {"page": [], "next": [], "decide": [], "undo": [], "get": []}
    headers = {"X-CSRFToken": client.cookies["csrftoken"]}
    elapsed, _ = timed(client, "GET", "/review/")
    times["page"].append(elapsed)
    elapsed, answer = timed(client, "GET", "/review/api/next")
    times["next"].append(elapsed)
    for step in range(decisions):
        rating = answer["item"]["id"]
        status = "approved" if rng.random() < 0.8 else "excluded"
        elapsed, _ = timed(
            client,
            "POST",
            f"/review/api/ratings/{rating}",
            json={"status": status},
            headers=headers,
        )
        times["decide"].append(elapsed)
        if step % 10 == 9:
            elapsed, _ = timed(client, "POST", "/review/api/undo", headers=headers)
            times["undo"].append(elapsed)
            elapsed, _ = timed(client, "GET", f"/review/api/ratings/{rating}")  # back to it
            times["get"].append(elapsed)
        if step % 50 == 49:
            elapsed, _ = timed(client, "GET", "/review/")  # a reload now and then
            times["page"].append(elapsed)
        elapsed, answer = timed(client, "GET", f"/review/api/next?after={rating}")
        times["next"].append(elapsed)
    return times


def baseline(client, count: int) -> list[float]:
    return [timed(client, "GET", "/api/profile/")[0] for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=300)
    args = parser.parse_args()
    ensure_database()
    workdir = setup_django()
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)
    from feedback.models import Rating
    from tests.support.servers import asgi_server

    cookie, pending = seed(args.pending)
    env = server_env(ENGINE_PRELOAD="0", DATABASE_CONN_MAX_AGE="600", LOG_LEVEL="WARNING")
    with asgi_server(env, workdir / "server.log") as url:
        name, value = cookie.split("=", 1)
        with httpx.Client(base_url=url, cookies={name: value}, timeout=30) as client:
            client.get("/review/").raise_for_status()  # sets csrftoken; warms the process
            baseline(client, 20)
            base = baseline(client, 200)
            times = review_day(client, args.decisions)
    everything = [ms for kind in times.values() for ms in kind]
    print(f"pending_at_start: {pending}")
    print(f"pending_at_end: {Rating.objects.filter(status='pending').count()}")
    print(f"baseline_profile_p50_ms: {percentile(base, 0.5):.1f}")
    print(f"baseline_profile_p95_ms: {percentile(base, 0.95):.1f}")
    for kind, values in times.items():
        print(f"{kind}_requests: {len(values)}")
        print(f"{kind}_p50_ms: {percentile(values, 0.5):.1f}")
        print(f"{kind}_p95_ms: {percentile(values, 0.95):.1f}")
    print(f"requests: {len(everything)}")
    print(f"review_p95_ms: {percentile(everything, 0.95):.1f}")


if __name__ == "__main__":
    main()
