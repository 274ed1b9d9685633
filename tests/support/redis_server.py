"""A private redis-server on its own port, which a test may stop and start again."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tests.support.servers import free_port


class PrivateRedis:
    def __init__(self, log: Path):
        self.port, self.log = free_port(), log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no",
        ]  # fmt: skip
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start; see {self.log}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()  # as an out-of-memory kill or a crash would
            self.process.wait()
            self.process = None

    def restart(self, downtime: float) -> None:
        """Down for ``downtime`` seconds (empty when back: it keeps nothing on disk)."""
        self.stop()
        time.sleep(downtime)
        self.start()
