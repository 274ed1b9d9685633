"""Training rows in TRL's conversational formats, and helpers over them.

Preference rows ``{"prompt", "chosen", "rejected", "conversation_id"}`` feed the
reward model and DPO; unpaired rows ``{"prompt", "completion", "label",
"conversation_id"}`` feed KTO. ``prompt`` is a list of chat messages, the
completions are one-message lists holding the assistant's reply, exactly as
TRL expects, so a feedback export loads straight into a trainer.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

Message = dict[str, str]

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")
UNPAIRED_COLUMNS = ("prompt", "completion", "label")


class PreferenceRow(TypedDict):
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    conversation_id: str


class UnpairedRow(TypedDict):
    prompt: list[Message]
    completion: list[Message]
    label: bool
    conversation_id: str


def assistant(text: str) -> list[Message]:
    """A completion in TRL's conversational form: one assistant message."""
    return [{"role": "assistant", "content": text}]


def preference_row(
    prompt: Sequence[Message], chosen: str, rejected: str, conversation_id: str
) -> PreferenceRow:
    return {
        "prompt": [dict(message) for message in prompt],
        "chosen": assistant(chosen),
        "rejected": assistant(rejected),
        "conversation_id": str(conversation_id),
    }


def unpaired_row(
    prompt: Sequence[Message], completion: str, label: bool, conversation_id: str
) -> UnpairedRow:
    return {
        "prompt": [dict(message) for message in prompt],
        "completion": assistant(completion),
        "label": bool(label),
        "conversation_id": str(conversation_id),
    }


def pairs_to_unpaired(pairs: Iterable[Mapping[str, Any]]) -> list[UnpairedRow]:
    """Each pair becomes a thumbs-up for ``chosen`` and a thumbs-down for ``rejected``."""
    rows: list[UnpairedRow] = []
    for pair in pairs:
        for key, label in (("chosen", True), ("rejected", False)):
            rows.append(
                {
                    "prompt": list(pair["prompt"]),
                    "completion": list(pair[key]),
                    "label": label,
                    "conversation_id": str(pair["conversation_id"]),
                }
            )
    return rows


def row_digest(row: Mapping[str, Any]) -> str:
    """sha256 of one row's canonical JSON (sorted keys, no whitespace)."""
    text = json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dataset_hash(rows: Iterable[Mapping[str, Any]]) -> str:
    """A stable sha256 for a set of rows, whatever order they were queried in.

    Jobs also train in ``canonical_order``, so equal hashes mean equal training data.
    """
    digests = sorted(row_digest(row) for row in rows)
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()


def canonical_order(rows: Iterable[Mapping[str, Any]]) -> list[Any]:
    """The rows sorted by digest: an order that does not depend on the caller's query."""
    return sorted(rows, key=row_digest)


def split_by_conversation(
    rows: Sequence[Mapping[str, Any]], eval_fraction: float, seed: int = 0
) -> tuple[list[Any], list[Any]]:
    """Split rows into (train, heldout), keeping each conversation on one side.

    Whole conversations, in a seeded shuffle, go to the held-out side until it
    holds at least ``eval_fraction`` of the rows. The training side always
    keeps at least one conversation; input order is preserved on both sides.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise ValueError("eval_fraction must be in [0, 1)")
    sizes: dict[str, int] = {}
    for row in rows:
        key = str(row["conversation_id"])
        sizes[key] = sizes.get(key, 0) + 1
    conversations = sorted(sizes)
    random.Random(seed).shuffle(conversations)
    wanted = eval_fraction * len(rows)
    heldout_ids: set[str] = set()
    taken = 0
    for key in conversations[:-1]:  # the last one always stays in training
        if taken >= wanted or eval_fraction == 0.0:
            break
        heldout_ids.add(key)
        taken += sizes[key]
    train = [row for row in rows if str(row["conversation_id"]) not in heldout_ids]
    heldout = [row for row in rows if str(row["conversation_id"]) in heldout_ids]
    return train, heldout


def to_trl_dataset(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]):
    """A ``datasets.Dataset`` with only the columns TRL reads."""
    from datasets import Dataset

    if not rows:
        raise ValueError("no training rows")
    return Dataset.from_list([{column: row[column] for column in columns} for row in rows])
