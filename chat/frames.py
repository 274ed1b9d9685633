"""Parsing and checking client websocket frames (see docs/protocol.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings

CLIENT_TYPES = {"send", "regenerate", "stop", "ping", "rate", "prefer"}


class FrameError(Exception):
    """A refused frame: sent back as ``{"type": "error", "code", "message"}``."""

    def __init__(self, code: str, message: str, field: str | None = None, **extra: object):
        super().__init__(message)
        self.code, self.message, self.field, self.extra = code, message, field, extra

    def as_frame(self, nonce: str | None = None) -> dict:
        frame = {"type": "error", "code": self.code, "message": self.message, **self.extra}
        if self.field:
            frame["field"] = self.field
        if nonce is not None:
            frame["nonce"] = nonce
        return frame


@dataclass(frozen=True)
class SendFrame:
    conversation_id: int
    content: str
    parent_id: int | None


def parse(text_data: str | None, bytes_data: bytes | None) -> dict:
    """Decode a frame into a dict with a known ``type``, or raise FrameError."""
    if text_data is None:
        raise FrameError("bad_json", "Frames must be JSON text, not binary.")
    if len(text_data.encode()) > settings.CHAT_MAX_FRAME_BYTES:
        raise FrameError(
            "frame_too_large", f"Frames may be at most {settings.CHAT_MAX_FRAME_BYTES} bytes."
        )
    try:
        frame = json.loads(text_data)
    except json.JSONDecodeError:
        raise FrameError("bad_json", "The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise FrameError("bad_json", "A frame must be a JSON object.")
    if frame.get("type") not in CLIENT_TYPES:
        known = ", ".join(sorted(CLIENT_TYPES))
        raise FrameError("unknown_type", f"Unknown frame type; expected one of: {known}.", "type")
    nonce = frame.get("nonce")
    if nonce is not None and (not isinstance(nonce, str) or len(nonce) > 64):
        raise FrameError("invalid", "nonce must be a string of at most 64 characters.", "nonce")
    return frame


def nonce_of(frame: dict) -> str | None:
    nonce = frame.get("nonce")
    return nonce if isinstance(nonce, str) and len(nonce) <= 64 else None


def send_frame(frame: dict) -> SendFrame:
    content = frame.get("content")
    if not isinstance(content, str):
        raise FrameError("invalid", "content must be a string.", "content")
    if not content.strip():
        raise FrameError("empty_message", "The message is empty.", "content")
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(content) > limit:
        raise FrameError(
            "message_too_long",
            f"The message is {len(content)} characters long; the limit is {limit}.",
            "content",
        )
    parent = frame.get("parent")
    return SendFrame(
        conversation_id=required_id(frame, "conversation"),
        content=content,
        parent_id=None if parent is None else required_id(frame, "parent"),
    )


def required_id(frame: dict, field: str) -> int:
    value = frame.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FrameError("invalid", f"{field} must be a positive integer id.", field)
    return value
