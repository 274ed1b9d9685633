"""Fitting a conversation into the model's context window.

The oldest turns go first; system messages and the newest message are kept.
If the newest message alone is still too long, its beginning is cut, so a
prompt always fits and generation can always start.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

ChatMessages = list[dict[str, str]]


def encode_chat(tokenizer: PreTrainedTokenizerBase, messages: ChatMessages) -> list[int]:
    """Token ids of ``messages`` in the model's chat format, ready for a reply."""
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True
    )
    return list(encoded["input_ids"])


def fit_messages(
    tokenizer: PreTrainedTokenizerBase, messages: ChatMessages, budget: int
) -> tuple[ChatMessages, list[int]]:
    """Drop the oldest turns until the prompt has at most ``budget`` tokens.

    Returns the messages kept and their token ids.
    """
    if budget < 1:
        raise ValueError("no room for a prompt in the context window")
    kept = [dict(message) for message in messages]
    ids = encode_chat(tokenizer, kept)
    while len(ids) > budget and _droppable_index(kept) is not None:
        del kept[_droppable_index(kept)]
        # A history must not start with an orphaned assistant reply.
        first = _droppable_index(kept)
        while first is not None and kept[first]["role"] == "assistant":
            del kept[first]
            first = _droppable_index(kept)
        ids = encode_chat(tokenizer, kept)
    if len(ids) > budget:
        kept, ids = _cut_last_message(tokenizer, kept, budget, len(ids))
    return kept, ids


def _droppable_index(messages: ChatMessages) -> int | None:
    """The oldest message that is neither a system message nor the newest one."""
    for index, message in enumerate(messages[:-1]):
        if message["role"] != "system":
            return index
    return None


def _cut_last_message(
    tokenizer: PreTrainedTokenizerBase, messages: ChatMessages, budget: int, length: int
) -> tuple[ChatMessages, list[int]]:
    """Keep only the end of the newest message (then of the system prompt)."""
    for index in (len(messages) - 1, *range(len(messages) - 2, -1, -1)):
        content_ids = tokenizer.encode(messages[index]["content"], add_special_tokens=False)
        while length > budget and content_ids:
            excess = length - budget
            content_ids = content_ids[min(len(content_ids), excess + 1) :]
            messages[index]["content"] = tokenizer.decode(content_ids)
            ids = encode_chat(tokenizer, messages)
            length = len(ids)
        if length <= budget:
            return messages, ids
    raise ValueError("the chat format alone does not fit the context window")
