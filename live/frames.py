"""Parsing and checking client websocket frames (see docs/protocol.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings

from chat.refusals import Refusal
from chat.services import message_text_check

CLIENT_TYPES = {
    "send",
    "regenerate",
    "stop",
    "ping",
    "rate",
    "prefer",
    "write_reply",
    "arena",
    "arena_vote",
}
MAX_NONCE_CHARS = 64


@dataclass(frozen=True)
class SendFrame:
    conversation_id: int
    content: str
    parent_id: int | None


def decode(text_data: str | None, bytes_data: bytes | None) -> dict:
    """The frame as a JSON object, or a Refusal (before any nonce can be read)."""
    if text_data is None:
        raise Refusal("bad_json", "Frames must be JSON text, not binary.")
    if len(text_data.encode()) > settings.CHAT_MAX_FRAME_BYTES:
        raise Refusal(
            "frame_too_large", f"Frames may be at most {settings.CHAT_MAX_FRAME_BYTES} bytes."
        )
    try:
        frame = json.loads(text_data)
    except json.JSONDecodeError:
        raise Refusal("bad_json", "The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise Refusal("bad_json", "A frame must be a JSON object.")
    return frame


def nonce_of(frame: dict) -> str | None:
    """The frame's nonce, if it is one the answer may echo."""
    nonce = frame.get("nonce")
    return nonce if isinstance(nonce, str) and len(nonce) <= MAX_NONCE_CHARS else None


def frame_type(frame: dict) -> str:
    """The frame's checked ``type``; a bad type or nonce is refused."""
    if frame.get("type") not in CLIENT_TYPES:
        known = ", ".join(sorted(CLIENT_TYPES))
        raise Refusal("unknown_type", f"Unknown frame type; expected one of: {known}.", "type")
    if frame.get("nonce") is not None and nonce_of(frame) is None:
        raise Refusal(
            "invalid", f"nonce must be a string of at most {MAX_NONCE_CHARS} characters.", "nonce"
        )
    return frame["type"]


def nonce_field(nonce: str | None) -> dict:
    """What a server frame answering a client frame adds: its nonce, if it had one."""
    return {} if nonce is None else {"nonce": nonce}


def error_frame(refusal: Refusal, nonce: str | None) -> dict:
    """The ``error`` frame answering a refused frame."""
    return {"type": "error", **refusal.as_dict(), **nonce_field(nonce)}


def send_frame(frame: dict) -> SendFrame:
    content = _content(frame)
    parent = frame.get("parent")
    return SendFrame(
        conversation_id=required_id(frame, "conversation"),
        content=content,
        parent_id=None if parent is None else required_id(frame, "parent"),
    )


def arena_content(frame: dict) -> str:
    """An arena question: the first message of a new, single-turn conversation."""
    return _content(frame)


def arena_versions(frame: dict) -> tuple[int, int] | None:
    """The two version ids staff chose to compare, or None: the arena picks."""
    chosen = frame.get("versions")
    if chosen is None:
        return None
    if not isinstance(chosen, list) or len(chosen) != 2:
        raise Refusal("invalid", "versions must be a list of two version ids.", "versions")
    return required_id({"versions": chosen[0]}, "versions"), required_id(
        {"versions": chosen[1]}, "versions"
    )


def _content(frame: dict) -> str:
    return message_text_check(frame.get("content"), noun="message", empty="The message is empty.")


def required_id(frame: dict, field: str) -> int:
    value = frame.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Refusal("invalid", f"{field} must be a positive integer id.", field)
    return value
