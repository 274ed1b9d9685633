"""Shared set-up for benchmarks: a throwaway database, a real server, a client."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PROMPTS = [
    "Explain why the sky is blue in a few sentences.",
    "Write a short poem about the sea.",
    "What are three tips for learning a new language?",
    "Describe how a bicycle works.",
    "Give me a recipe idea for a quick dinner.",
    "What is the difference between weather and climate?",
    "Tell me a fun fact about octopuses.",
    "How do plants make their food?",
]


def setup_django() -> Path:
    """Configure Django on a fresh SQLite file (or DATABASE_URL if set) and migrate."""
    workdir = Path(tempfile.mkdtemp(prefix="loopchat-bench-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
    os.environ.setdefault("CHANNEL_PREFIX", "loopchat-bench")
    os.environ.setdefault("CACHE_PREFIX", "loopchat-bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return workdir


def make_user(username: str, *, max_new_tokens: int, temperature: float = 0.0, count: int = 1):
    """A user with ``count`` conversations (empty system prompt: the model's default)."""
    from django.contrib.auth import get_user_model

    from chat import services
    from tests.support.ws import session_cookie

    user = get_user_model().objects.create_user(username, password="bench-password-1")
    conversations = []
    for _ in range(count):
        conversation = services.conversation_create(owner=user)
        services.conversation_update(
            conversation=conversation,
            changes={
                "system_prompt": "",
                "temperature": temperature,
                "max_new_tokens": max_new_tokens,
            },
        )
        conversations.append(conversation)
    return session_cookie(user), conversations


def server_env(**overrides: str) -> dict[str, str]:
    from tests.support.servers import process_env

    env = process_env(**{"CHAT_RATE_LIMIT_MESSAGES": "100000", "ENGINE_PRELOAD": "1", **overrides})
    env.pop("OMP_NUM_THREADS", None)  # the real model uses every core
    return env


def train_now_process(env: dict[str, str], log: Path) -> tuple[float, float]:
    """``manage.py train_now`` in its own process: (seconds, peak RSS in MiB)."""
    import subprocess
    import time

    started = time.monotonic()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "train_now"], cwd=REPO, env=env, stdout=out, stderr=out
        )
        _, status, usage = os.wait4(process.pid, 0)
    if status:
        raise RuntimeError(f"train_now failed; see {log}")
    return time.monotonic() - started, usage.ru_maxrss / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


async def websocket_reply(
    url: str, cookie: str, conversation_id: int, prompt: str, parent: int | None = None
) -> dict:
    """Send one message over a real websocket (after reply ``parent``, or first); time
    its first token and its last."""
    import json
    import time

    from tests.support.ws import open_chat

    socket = await open_chat(url, cookie)
    start = time.perf_counter()
    frame = {"type": "send", "conversation": conversation_id, "content": prompt, "parent": parent}
    await socket.send(json.dumps(frame))
    first, last, parts = None, None, []
    while True:
        frame = json.loads(await socket.recv())
        if frame["type"] == "token":
            last = time.perf_counter()
            first = first or last
            parts.append(frame["text"])
        elif frame["type"] == "reply_done":
            break
        elif frame["type"] == "error":
            raise RuntimeError(frame)
    await socket.close()
    return {
        "tokens": frame["message"]["stats"]["completion_tokens"],
        "seconds": last - start,
        "ttft": first - start,
        "text": "".join(parts),
        "id": frame["message"]["id"],
    }


def check_outcome(check: dict) -> str:
    """A gate check as a benchmark prints it: pass, FAIL, or n/a (nothing to judge)."""
    if not check.get("applicable", True):
        return "n/a"
    return "pass" if check["passed"] else "FAIL"
