"""How much of the context window retrieved passages may take.

The prompt's room is the window less the reply's ``max_new_tokens``. The
system prompt and the question always fit first. Passages then take what the
history leaves free; when a long history would leave them little, they still
get ``share`` of the room, and the engine drops the oldest turns to make it.
So a long chat keeps its recent turns and its sources both.
"""

from __future__ import annotations

# Chat-format tokens around each message (role markers, separators), and the
# "Sources:" / "Question:" labels the grounded prompt adds.
PER_MESSAGE_OVERHEAD = 8
LAYOUT_OVERHEAD = 16


def passage_budget(
    *,
    context_window: int,
    max_new_tokens: int,
    fixed_tokens: int,
    history_tokens: int,
    history_messages: int,
    share: float,
) -> int:
    """Tokens the passages may use; ``fixed_tokens`` is the system prompt and question."""
    room = context_window - max_new_tokens
    fixed = fixed_tokens + LAYOUT_OVERHEAD + 2 * PER_MESSAGE_OVERHEAD
    history = history_tokens + history_messages * PER_MESSAGE_OVERHEAD
    ceiling = room - fixed
    wanted = max(room - fixed - history, int(share * room))
    return max(0, min(ceiling, wanted))
