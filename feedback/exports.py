"""Feedback as training data, in TRL's conversational dataset formats.

Every row is built from the exact messages stored with the reply (what the
model saw), never re-rendered: for a reply grounded on the user's documents
those messages already hold the numbered passages, so training learns to
answer from them. A grounded reply's row also carries ``sources``, the
passages with their ``cited`` flags (TRL ignores columns it does not read;
plain replies' rows have no such column). Feedback from users who opted out is never
exported, and at most ``FEEDBACK_DAILY_TRAINING_CAP`` ratings (and pairs) per
user per day count. Each row carries ``conversation_id`` so a later
train/eval split can keep a conversation on one side.

A reply the user wrote under a thumbs-down (a ``written`` pair) is a preference
row like any pair (``dpo``, ``reward``: it chosen, the rated reply rejected)
and a supervised example (``sft``), under the prompt of the reply it rewrote.
"""

from __future__ import annotations

import datetime
import heapq
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.conf import settings
from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber, TruncDate

from chat.models import Message
from chat.refusals import Refusal
from feedback.models import FeedbackProfile, PreferencePair, Rating

FORMATS = ("kto", "dpo", "reward", "sft")
ANY_STATUS = "any"


def export_rows(
    *, format: str, status: str = "approved", since: datetime.date | None = None
) -> Iterator[dict]:
    """Rows of one format: ``kto`` unpaired, ``dpo``/``reward`` pairs, ``sft`` messages."""
    if format not in FORMATS:
        raise Refusal("invalid", f"format must be one of {', '.join(FORMATS)}", "format")
    if format == "kto":
        return (unpaired_row(rating) for rating in ratings_for_training(status=status, since=since))
    if format == "sft":
        return sft_rows(status=status, since=since)
    return pair_rows(pairs_for_training(status=status, since=since))


def sft_rows(*, status: str = "approved", since: datetime.date | None = None) -> Iterator[dict]:
    """The replies to imitate, oldest first: thumbs-up ones and the ones users wrote.

    Written replies come from ``pairs_for_training`` (the pair is what staff review),
    taken after its daily cap so they count against it as the pairs they are.
    """
    ups = ratings_for_training(status=status, since=since).filter(value=Rating.Value.UP)
    pairs = pairs_for_training(status=status, since=since)
    written = [pair for pair in pairs if pair.source == PreferencePair.Source.WRITTEN]
    merged = heapq.merge(
        ((rating.created_at, rating.message, "thumbs_up") for rating in ups),
        ((pair.created_at, pair.chosen, "written") for pair in written),
        key=lambda item: item[0],
    )
    return (_sft_row(reply, origin) for _, reply, origin in merged)


def export_to_file(*, path: Path, format: str, status: str, since: datetime.date | None) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as output:
        for row in export_rows(format=format, status=status, since=since):
            output.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def ratings_for_training(
    *, status: str = "approved", since: datetime.date | None = None
) -> QuerySet[Rating]:
    """Ratings that may be trained on, oldest first, within the daily cap."""
    ratings = _eligible(Rating.objects.all(), "message", status, since)
    return _within_daily_cap(ratings).select_related("message")


def pairs_for_training(
    *, status: str = "approved", since: datetime.date | None = None
) -> QuerySet[PreferencePair]:
    pairs = _eligible(PreferencePair.objects.all(), "chosen", status, since)
    return _within_daily_cap(pairs).select_related("chosen", "rejected")


def _eligible(rows: QuerySet, reply: str, status: str, since: datetime.date | None) -> QuerySet:
    opted_out = FeedbackProfile.objects.filter(share_for_training=False).values("user_id")
    rows = rows.exclude(user_id__in=opted_out).filter(
        **{f"{reply}__prompt_messages__isnull": False}
    )
    if status != ANY_STATUS:
        rows = rows.filter(status=status)
    if since is not None:
        rows = rows.filter(created_at__date__gte=since)
    return rows


def _within_daily_cap(rows: QuerySet) -> QuerySet:
    ranked = rows.annotate(
        rank_in_day=Window(
            RowNumber(),
            partition_by=[F("user_id"), TruncDate("created_at")],
            order_by=[F("created_at").asc(), F("id").asc()],
        )
    )
    return ranked.filter(rank_in_day__lte=settings.FEEDBACK_DAILY_TRAINING_CAP).order_by(
        "created_at", "id"
    )


def _assistant(message: Message) -> list[dict]:
    return [{"role": "assistant", "content": message.content}]


# One key set for every passage, so a JSON loader infers one column type.
SOURCE_KEYS = ("number", "chunk", "document", "filename", "page", "heading", "text", "score")


def sources_field(reply: Message) -> dict:
    """``{"sources": [...]}`` for a grounded reply, nothing for a plain one."""
    if not reply.grounded:
        return {}
    passages = [
        {
            **{key: source.get(key) for key in SOURCE_KEYS},
            "score": float(source.get("score") or 0.0),
            "cited": bool(source.get("cited")),
        }
        for source in reply.sources
    ]
    return {"sources": passages}


def unpaired_row(rating: Rating) -> dict:
    reply = rating.message
    return {
        "prompt": reply.prompt_messages,
        "completion": _assistant(reply),
        "label": rating.is_up,
        "conversation_id": str(reply.conversation_id),
        "message_id": reply.pk,
        "model_version": reply.model_version,
        **sources_field(reply),
    }


def _sft_row(reply: Message, origin: str) -> dict:
    """``origin``: ``thumbs_up`` (a model reply rated up) or ``written`` (the user's own)."""
    return {
        "messages": [*reply.prompt_messages, *_assistant(reply)],
        "conversation_id": str(reply.conversation_id),
        "message_id": reply.pk,
        "origin": origin,
        **sources_field(reply),
    }


def pair_rows(pairs: Iterable[PreferencePair]) -> Iterator[dict]:
    """One row per (chosen, rejected), explicit choices first, under the chosen reply's prompt.

    Siblings can have seen different prompts: one grounded on passages and one
    not, other passages, a system prompt changed in between. The row shows what
    the chosen reply was written from, always: it is the reply training teaches
    the model to give, so its prompt (passages included) is the situation to
    learn for; the rejected one is the user's worse answer to the same question,
    pushed down in that situation. Skipping such pairs would drop exactly the
    grounded-against-plain comparisons.
    """
    seen: set[tuple[int, int]] = set()
    ordered = sorted(pairs, key=lambda pair: pair.source != PreferencePair.Source.EXPLICIT)
    for pair in ordered:
        key = (pair.chosen_id, pair.rejected_id)
        if key in seen:
            continue
        seen.add(key)
        yield {
            "prompt": pair.chosen.prompt_messages,
            "chosen": _assistant(pair.chosen),
            "rejected": _assistant(pair.rejected),
            "conversation_id": str(pair.conversation_id),
            "source": pair.source,
            **sources_field(pair.chosen),
        }
