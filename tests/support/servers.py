"""Real processes for end-to-end tests: the ASGI server and inference workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The URL of the database the tests run on (the test database, once set up)."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    user = database.get("USER") or ""
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{database['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        REDIS_URL=settings.REDIS_URL,
        CHANNEL_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        # Servers in tests run the tiny model: one thread each avoids OpenMP
        # threads of several processes spinning against each other on 2 cores.
        OMP_NUM_THREADS="1",
    )
    env.update(overrides)
    return env


def app_env(model_dir: Path, **overrides: str) -> dict[str, str]:
    """A server running the whole app on the test database, ``model_dir`` loaded
    in-process; it keeps Django's async-safety check."""
    defaults = {
        "CHAT_MODEL": str(model_dir),
        "ENGINE_PRELOAD": "1",
        "INFERENCE_MODE": "local",
        "CHAT_RATE_LIMIT_MESSAGES": "1000",
    }
    env = process_env(**{**defaults, **overrides})
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


@contextmanager
def asgi_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """Run Uvicorn as `make run` does, on a free port; yield its base URL."""
    with asgi_server_process(env, log) as (url, _):
        yield url


@contextmanager
def asgi_server_process(env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``asgi_server``, also yielding the process (for tests that kill it)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--timeout-graceful-shutdown",
        "30",
    ]
    with _process(command, env, log) as process:
        url = f"http://127.0.0.1:{port}"
        _wait_for(f"{url}/healthz", log)
        yield url, process


@contextmanager
def inference_worker(
    env: dict[str, str], log: Path, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m live.inference_worker`` on ``port`` (a free one by default), once its
    model is loaded."""
    port = port or free_port()
    command = [sys.executable, "-m", "live.inference_worker", "--port", str(port)]
    with _process(command, env, log) as process:
        url = f"http://127.0.0.1:{port}"
        _wait_for(f"{url}/health", log)
        yield url, process


@contextmanager
def celery_process(
    role: str, env: dict[str, str], log: Path, pool: str = "solo"
) -> Iterator[subprocess.Popen]:
    """A real Celery worker (``worker``: both queues; the solo pool, or ``prefork``
    with one child process as ``make run`` has more of) or ``beat``."""
    celery = str(Path(sys.executable).with_name("celery"))
    if role == "beat":
        command = [
            celery,
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(log.with_suffix(".schedule")),
        ]
    else:
        command = [
            celery,
            "-A",
            "config",
            "worker",
            "-Q",
            "celery,training",
            "--pool",
            pool,
            *(["--concurrency", "1"] if pool == "prefork" else []),
            "--loglevel",
            "INFO",
            "-n",
            f"test-{free_port()}@%h",
        ]
    with _process(command, env, log) as process:
        yield process


@contextmanager
def _process(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=40)  # Uvicorn's graceful shutdown may take 30 s
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for(url: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up; log:\n{log.read_text()[-3000:]}")
