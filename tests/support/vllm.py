"""Real vLLM CPU servers for tests and benchmarks, started by scripts/vllm_server.sh."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.servers import REPO, _wait_for, free_port

VLLM_VENV = Path(os.environ.get("VLLM_VENV", REPO / ".venv-vllm"))


def vllm_installed() -> bool:
    return (VLLM_VENV / "bin" / "python").exists()


@contextmanager
def vllm_server(model_dir: Path, log: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """One server on a free port, in its own process group (vLLM forks an engine core)."""
    with vllm_servers(model_dir, [log], **env) as (server,):
        yield server


@contextmanager
def vllm_servers(
    model_dir: Path, logs: list[Path], **env: str
) -> Iterator[list[tuple[str, subprocess.Popen]]]:
    """One server per log, started at once (their start-ups overlap), each ready.

    A test may replace an entry (a server it restarted): the list's servers are stopped."""
    servers = []
    try:
        for log in logs:
            port = free_port()
            process = vllm_start(model_dir, log, port, **env)
            servers.append((f"http://127.0.0.1:{port}", process))
        for (url, _), log in zip(servers, logs, strict=True):
            _wait_for(f"{url}/health", log, timeout=300)
        yield servers
    finally:
        for _, process in servers:
            kill_server(process, signal.SIGTERM)


def vllm_start(model_dir: Path, log: Path, port: int, **env: str) -> subprocess.Popen:
    """scripts/vllm_server.sh on ``port``, in its own process group; not waited for."""
    environment = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "VLLM_VENV": str(VLLM_VENV),
        "VLLM_CPU_KVCACHE_SPACE": "1",
        **env,
    }
    environment.pop("PYTHONPATH", None)  # the app's packages are not vLLM's
    with open(log, "ab") as output:
        return subprocess.Popen(
            ["bash", str(REPO / "scripts" / "vllm_server.sh"), str(port)],
            cwd=REPO,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_server(process: subprocess.Popen, sig: signal.Signals = signal.SIGKILL) -> None:
    """Signal the server's whole process group and wait for it."""
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
