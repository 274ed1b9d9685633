"""The one refusal type: every service raises it, each edge translates it once.

chat is the bottom app (feedback and training build on it), so its refusal
is everyone's: ``live.consumers`` turns one into an ``error`` frame (with the
request's nonce), ``live.api`` into a JSON error body (docs/protocol.md).
"""

from __future__ import annotations


class Refusal(ValueError):
    """A refused request; nothing was written.

    ``code`` is one of the protocol's error codes, ``message`` human text,
    ``field`` the one input at fault. ``fields`` maps several inputs to their
    problems (a settings form refused as a whole). ``extra`` rides along in the
    answer, e.g. ``retry_after`` of ``rate_limited``.
    """

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        *,
        fields: dict[str, str] | None = None,
        **extra: object,
    ):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field
        self.fields, self.extra = fields, extra

    def as_dict(self) -> dict:
        """``code`` and ``message``, ``field`` when one is named, then any extra."""
        body = {"code": self.code, "message": self.message, **self.extra}
        if self.field:
            body["field"] = self.field
        return body
