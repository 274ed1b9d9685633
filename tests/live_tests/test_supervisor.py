"""`make run`'s script keeps the app up: a child that dies is started again, the others
run on, and a stop signal ends them all. The real scripts/run.sh, on the tiny model."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.servers import REPO, free_port, process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(400)]


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``: {pid: command line}."""
    rows = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    children: dict[int, list[tuple[int, str]]] = {}
    for row in rows:
        child, parent, args = row.split(None, 2)
        children.setdefault(int(parent), []).append((int(child), args))
    found, todo = {}, [pid]
    while todo:
        for child, args in children.get(todo.pop(), []):
            found[child] = args
            todo.append(child)
    return found


def the(processes: dict[int, str], marker: str) -> int:
    matches = [pid for pid, args in processes.items() if marker in args and "sh -c" not in args]
    assert len(matches) == 1, (marker, processes)
    return matches[0]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_a_child_that_dies_comes_back_and_ctrl_c_stops_them_all(tiny_model_dir, tmp_path):
    port = free_port()
    env = process_env(
        PORT=str(port),
        CHAT_MODEL=str(tiny_model_dir),
        ADMIN_USERNAME="admin",
        ADMIN_PASSWORD="admin-password-1",
        LOOPCHAT_DATA_DIR=str(tmp_path / "var"),
    )
    env.pop("OMP_NUM_THREADS", None)
    log = (tmp_path / "run.log").open("wb")
    script = subprocess.Popen(
        ["bash", "scripts/run.sh"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, preexec_fn=like_a_terminal,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), 240, "the web server")
        beat = wait_for(lambda: the_or_none(script.pid, "config beat"), 60, "beat")
        web = the(descendants(script.pid), "uvicorn")

        os.kill(beat, signal.SIGKILL)
        os.kill(web, signal.SIGKILL)
        new_beat = wait_for(
            lambda: (pid := the_or_none(script.pid, "config beat")) not in (None, beat) and pid,
            30,
            "beat to come back",
        )
        wait_for(lambda: healthy(url), 60, "the web server to come back")
        assert new_beat != beat and the(descendants(script.pid), "uvicorn") != web
        assert script.poll() is None
        text = (tmp_path / "run.log").read_text()
        assert "celery beat exited" in text and "web exited" in text
        started = descendants(script.pid)
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the group
        script.wait(timeout=90)
    time.sleep(1)
    assert {pid: args for pid, args in started.items() if alive(pid)} == {}
    assert not healthy(url)


def like_a_terminal() -> None:
    """Give the script SIGINT's default action, as a shell in a terminal does, even
    where the tests run with it ignored (under nohup, as a background job): bash
    cannot trap a signal that was ignored when it started, and Ctrl-C would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped has stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def the_or_none(pid: int, marker: str) -> int | None:
    matches = [p for p, args in descendants(pid).items() if marker in args and "sh -c" not in args]
    return matches[0] if len(matches) == 1 else None
