"""The review queue, one item at a time: what a reviewer sees, decides and undoes.

An item is a rating or a preference pair (explicit, derived, arena or written).
The queue is the pending ones, oldest first (``created_at``, ratings before
pairs at the same moment, then id), filtered by kind, thumb, pair source or
model version. Unfiltered, it leaves derived pairs out: reviewing their two
ratings decides them; the pairs filters (kind or source) show them too. Each decision is a ``ReviewAction`` (who, when, from which
status to which, on which rating or pair), so the audit trail survives a
reload and undo reverts the reviewer's own last one.

A derived pair decided here keeps that decision while its two thumbs still
make it (``pairs_derive``); left undecided, it follows the two ratings.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from chat.refusals import Refusal
from feedback.models import PreferencePair, Rating, ReviewAction, ReviewStatus
from feedback.review_items import pair_item, rating_item
from feedback.services import pairs_derive

DECISIONS = (ReviewStatus.APPROVED, ReviewStatus.EXCLUDED)
KINDS = {"rating": Rating, "pair": PreferencePair}
# Ratings come before pairs given at the same moment.
_RANK = {"rating": 0, "pair": 1}

Item = Rating | PreferencePair


@dataclass(frozen=True)
class ItemRef:
    """Which item: ``rating:7``, ``pair:3``, or a bare ``7`` (a rating)."""

    kind: str
    id: int

    @classmethod
    def parse(cls, text: str, *, field: str = "after") -> ItemRef:
        kind, _, number = text.rpartition(":")
        kind = kind or "rating"
        if kind not in KINDS or not number.isascii() or not number.isdigit():
            raise Refusal("invalid", f"{field} must be rating:<id> or pair:<id>.", field)
        return cls(kind, int(number))

    @classmethod
    def of(cls, item: Item) -> ItemRef:
        return cls(kind_of(item), item.pk)


@dataclass(frozen=True)
class QueueFilter:
    """Which pending items the queue walks: ratings, pairs or both; one thumb
    (ratings only), one pair source (pairs only), one model version."""

    value: int | None = None
    model_version: str = ""
    kind: str = ""  # "", "ratings" or "pairs"
    source: str = ""  # a PreferencePair.Source, or "" for any

    @classmethod
    def parse(
        cls, *, value: str = "", model_version: str = "", kind: str = "", source: str = ""
    ) -> QueueFilter:
        values = {"up": Rating.Value.UP, "down": Rating.Value.DOWN, "": None}
        if value not in values:
            raise Refusal("invalid", 'The thumb filter must be "up" or "down".', "value")
        if kind not in ("", "ratings", "pairs"):
            raise Refusal("invalid", 'The kind filter must be "ratings" or "pairs".', "kind")
        if source and source not in PreferencePair.Source.values:
            known = ", ".join(PreferencePair.Source.values)
            raise Refusal("invalid", f"The pair source must be one of {known}.", "source")
        if value and (source or kind == "pairs"):
            raise Refusal("invalid", "The thumb filter is for ratings; pairs have none.", "value")
        if source and kind == "ratings":
            raise Refusal("invalid", "The pair source filter is for pairs only.", "source")
        return cls(values[value], model_version, kind, source)

    def pending(self, kind: str) -> QuerySet:
        """The pending items of one kind in this queue (none when it filters them out)."""
        if kind == "rating":
            return self._ratings()
        return self._pairs()

    def _ratings(self) -> QuerySet[Rating]:
        if self.kind == "pairs" or self.source:
            return Rating.objects.none()
        ratings = Rating.objects.filter(status=ReviewStatus.PENDING)
        if self.value is not None:
            ratings = ratings.filter(value=self.value)
        if self.model_version:
            ratings = ratings.filter(model_version=self.model_version)
        return ratings

    def _pairs(self) -> QuerySet[PreferencePair]:
        if self.kind == "ratings" or self.value is not None:
            return PreferencePair.objects.none()
        pairs = PreferencePair.objects.filter(status=ReviewStatus.PENDING)
        if self.source:
            pairs = pairs.filter(source=self.source)
        elif not self.kind:
            # A derived pair follows its two ratings' review: the walk through
            # everything leaves it to them; the pairs filters show it.
            pairs = pairs.exclude(source=PreferencePair.Source.DERIVED)
        if self.model_version:
            version = self.model_version
            pairs = pairs.filter(
                Q(chosen__model_version=version) | Q(rejected__model_version=version)
            )
        return pairs


def kind_of(item: Item) -> str:
    return "pair" if isinstance(item, PreferencePair) else "rating"


def item_get(*, ref: ItemRef) -> Item | None:
    return KINDS[ref.kind].objects.filter(pk=ref.id).first()


def queue_item(*, item: Item) -> dict:
    """The item as the focus view shows it (``feedback.review_items``)."""
    if isinstance(item, PreferencePair):
        return pair_item(pair_id=item.pk)
    return rating_item(rating_id=item.pk)


def queue_next(*, queue: QueueFilter, after: ItemRef | None = None) -> Item | None:
    """The first pending item after ``after`` in queue order, wrapping round."""
    key = _key_of_ref(after) if after is not None else None
    later = [
        first
        for kind in KINDS
        if (first := _ordered(_later(queue.pending(kind), kind, key)).first()) is not None
    ]
    if later:
        return min(later, key=_key)
    if after is None:
        return None
    others = [
        first
        for kind in KINDS
        if (first := _ordered(_without(queue.pending(kind), kind, after)).first()) is not None
    ]
    return min(others, key=_key) if others else None


def queue_progress(*, queue: QueueFilter, item: Item | None) -> dict:
    """How many are pending, and where ``item`` stands among them (1-based)."""
    total = sum(queue.pending(kind).count() for kind in KINDS)
    position = None
    if item is not None and queue.pending(kind_of(item)).filter(pk=item.pk).exists():
        key = _key(item)
        position = 1 + sum(queue.pending(kind).filter(_before(kind, key)).count() for kind in KINDS)
    return {"pending": total, "position": position}


def rating_decide(*, rating_id: int, reviewer: AbstractBaseUser, status: str) -> Rating:
    """Approve or exclude one rating (or put it back to pending), as one action."""
    return _decide(ItemRef("rating", rating_id), reviewer=reviewer, status=status)


def pair_decide(*, pair_id: int, reviewer: AbstractBaseUser, status: str) -> PreferencePair:
    """Approve or exclude one preference pair (or put it back to pending), as one action."""
    return _decide(ItemRef("pair", pair_id), reviewer=reviewer, status=status)


def review_undo(*, reviewer: AbstractBaseUser) -> Item:
    """Revert the reviewer's latest decision not yet undone; refused when none is left."""
    with transaction.atomic():
        action = (
            ReviewAction.objects.select_for_update()
            .filter(reviewer=reviewer, undone_at=None)
            .order_by("-created_at", "-id")
            .first()
        )
        if action is None:
            raise Refusal("nothing_to_undo", "There is nothing of yours left to undo.")
        action.undone_at = timezone.now()
        action.save(update_fields=["undone_at"])
        item = action.target
        _set_status(item, action.previous_status, reviewer)
    return item


# -- helpers ----------------------------------------------------------------------

Key = tuple[datetime.datetime, int, int]


def _decide(ref: ItemRef, *, reviewer: AbstractBaseUser, status: str) -> Item:
    if status not in ReviewStatus.values:
        raise Refusal("invalid", "status must be approved, excluded or pending.", "status")
    with transaction.atomic():
        item = KINDS[ref.kind].objects.select_for_update().filter(pk=ref.id).first()
        if item is None:
            raise Refusal(
                "not_found", f"No such {ref.kind} (it may have been withdrawn).", ref.kind
            )
        ReviewAction.objects.create(
            **{ref.kind: item}, reviewer=reviewer, previous_status=item.status, status=status
        )
        _set_status(item, status, reviewer)
    return item


def _set_status(item: Item, status: str, reviewer: AbstractBaseUser) -> None:
    item.status = status
    item.reviewed_by = None if status == ReviewStatus.PENDING else reviewer
    item.reviewed_at = None if status == ReviewStatus.PENDING else timezone.now()
    item.save(update_fields=["status", "reviewed_by", "reviewed_at", "updated_at"])
    if isinstance(item, Rating):
        pairs_derive(user_id=item.user_id, prompt_message_id=item.message.parent_id)


def _key(item: Item) -> Key:
    return (item.created_at, _RANK[kind_of(item)], item.pk)


def _key_of_ref(ref: ItemRef) -> Key | None:
    created_at = KINDS[ref.kind].objects.filter(pk=ref.id).values_list("created_at", flat=True)
    created_at = created_at.first()
    return None if created_at is None else (created_at, _RANK[ref.kind], ref.id)


def _ordered(items: QuerySet) -> QuerySet:
    return items.order_by("created_at", "id")


def _later(items: QuerySet, kind: str, key: Key | None) -> QuerySet:
    """Items of ``kind`` after ``key`` in queue order (all of them without a key)."""
    if key is None:
        return items
    created_at, rank, item_id = key
    same_moment = Q(pk__in=[])
    if _RANK[kind] > rank:
        same_moment = Q(created_at=created_at)
    elif _RANK[kind] == rank:
        same_moment = Q(created_at=created_at, id__gt=item_id)
    return items.filter(Q(created_at__gt=created_at) | same_moment)


def _before(kind: str, key: Key) -> Q:
    """Items of ``kind`` strictly before ``key`` in queue order."""
    created_at, rank, item_id = key
    same_moment = Q(pk__in=[])
    if _RANK[kind] < rank:
        same_moment = Q(created_at=created_at)
    elif _RANK[kind] == rank:
        same_moment = Q(created_at=created_at, id__lt=item_id)
    return Q(created_at__lt=created_at) | same_moment


def _without(items: QuerySet, kind: str, ref: ItemRef) -> QuerySet:
    return items.exclude(pk=ref.id) if kind == ref.kind else items
