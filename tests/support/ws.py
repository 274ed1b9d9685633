"""A real websocket client for tests and benchmarks against a running server."""

from __future__ import annotations

import asyncio
import json

from django.test import Client
from websockets.asyncio.client import ClientConnection, connect


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


async def open_chat(base_url: str, cookie: str) -> ClientConnection:
    """Connect to /ws/chat/ as the cookie's user; skip the engine-state frames."""
    ws_url = base_url.replace("http://", "ws://") + "/ws/chat/"
    return await connect(
        ws_url, origin=base_url, additional_headers={"Cookie": cookie}, max_size=None
    )


async def next_frame(socket: ClientConnection, skip=("engine",), timeout: float = 60) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        if frame["type"] not in skip:
            return frame


async def frames_until(socket: ClientConnection, frame_type: str) -> list[dict]:
    frames = []
    while True:
        frames.append(await next_frame(socket))
        if frames[-1]["type"] == frame_type:
            return frames
