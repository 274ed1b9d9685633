"""The review queue, one rating at a time: what a reviewer sees, decides and undoes.

The queue is the pending ratings, oldest first (``created_at``, then id). Each
decision is a ``ReviewAction`` (who, when, from which status to which), so the
audit trail survives a reload and undo reverts the reviewer's own last one.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from chat.models import Message
from chat.refusals import Refusal
from feedback.models import (
    ALL_REASONS,
    FeedbackProfile,
    PreferencePair,
    Rating,
    ReviewAction,
    ReviewStatus,
)
from feedback.services import pairs_derive

DECISIONS = (ReviewStatus.APPROVED, ReviewStatus.EXCLUDED)


@dataclass(frozen=True)
class QueueFilter:
    """Which pending ratings the queue walks: all, or one thumb, or one version."""

    value: int | None = None
    model_version: str = ""

    @classmethod
    def parse(cls, *, value: str = "", model_version: str = "") -> QueueFilter:
        values = {"up": Rating.Value.UP, "down": Rating.Value.DOWN, "": None}
        if value not in values:
            raise Refusal("invalid", 'The thumb filter must be "up" or "down".', "value")
        return cls(value=values[value], model_version=model_version)

    def pending(self) -> QuerySet[Rating]:
        ratings = Rating.objects.filter(status=ReviewStatus.PENDING)
        if self.value is not None:
            ratings = ratings.filter(value=self.value)
        if self.model_version:
            ratings = ratings.filter(model_version=self.model_version)
        return ratings


def queue_next(*, queue: QueueFilter, after_id: int | None = None) -> Rating | None:
    """The first pending rating after ``after_id`` in queue order, wrapping round."""
    pending = queue.pending().order_by("created_at", "id")
    if after_id is not None:
        after = Rating.objects.filter(pk=after_id).values("created_at").first()
        if after is not None:
            later = _after(pending, after["created_at"], after_id).first()
            if later is not None:
                return later
            pending = pending.exclude(pk=after_id)
    return pending.first()


def queue_progress(*, queue: QueueFilter, rating: Rating | None) -> dict:
    """How many are pending, and where ``rating`` stands among them (1-based)."""
    pending = queue.pending()
    total = pending.count()
    position = None
    if rating is not None and rating.status == ReviewStatus.PENDING:
        before = pending.filter(
            Q(created_at__lt=rating.created_at) | Q(created_at=rating.created_at, id__lt=rating.pk)
        )
        position = before.count() + 1
    return {"pending": total, "position": position}


def review_item(*, rating_id: int) -> dict:
    """One rating as the focus view shows it: the conversation the model saw, the
    passages retrieved into it (empty for a plain reply), the rated reply, its
    sibling, the reasons as labels, the rater's standing."""
    rating = (
        Rating.objects.select_related("message", "user", "reviewed_by").filter(pk=rating_id).first()
    )
    if rating is None:
        raise Refusal("not_found", "No such rating (it may have been withdrawn).", "rating")
    return {
        "id": rating.pk,
        "status": rating.status,
        "value": "up" if rating.is_up else "down",
        "reasons": [{"key": key, "label": ALL_REASONS.get(key, key)} for key in rating.reasons],
        "comment": rating.comment,
        "model_version": rating.model_version,
        "created_at": rating.created_at.isoformat(),
        "reviewed_by": rating.reviewed_by.get_username() if rating.reviewed_by else None,
        "reviewed_at": rating.reviewed_at.isoformat() if rating.reviewed_at else None,
        "rater": _rater(rating),
        "context": _context(rating.message),
        "sources": _sources(rating.message),
        "reply": {"id": rating.message_id, "content": rating.message.content},
        "sibling": _sibling(rating),
    }


def rating_decide(*, rating_id: int, reviewer: AbstractBaseUser, status: str) -> Rating:
    """Approve or exclude one rating (or put it back to pending), as one action."""
    if status not in ReviewStatus.values:
        raise Refusal("invalid", "status must be approved, excluded or pending.", "status")
    with transaction.atomic():
        rating = Rating.objects.select_for_update().filter(pk=rating_id).first()
        if rating is None:
            raise Refusal("not_found", "No such rating (it may have been withdrawn).", "rating")
        ReviewAction.objects.create(
            rating=rating, reviewer=reviewer, previous_status=rating.status, status=status
        )
        _set_status(rating, status, reviewer)
    return rating


def review_undo(*, reviewer: AbstractBaseUser) -> Rating:
    """Revert the reviewer's latest decision not yet undone; refused when none is left."""
    with transaction.atomic():
        action = (
            ReviewAction.objects.select_for_update()
            .filter(reviewer=reviewer, undone_at=None)
            .select_related("rating")
            .order_by("-created_at", "-id")
            .first()
        )
        if action is None:
            raise Refusal("nothing_to_undo", "There is nothing of yours left to undo.")
        action.undone_at = timezone.now()
        action.save(update_fields=["undone_at"])
        _set_status(action.rating, action.previous_status, reviewer)
    return action.rating


# -- helpers ----------------------------------------------------------------------


def _after(pending: QuerySet[Rating], created_at, rating_id: int) -> QuerySet[Rating]:
    return pending.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=rating_id))


def _set_status(rating: Rating, status: str, reviewer: AbstractBaseUser) -> None:
    rating.status = status
    rating.reviewed_by = None if status == ReviewStatus.PENDING else reviewer
    rating.reviewed_at = None if status == ReviewStatus.PENDING else timezone.now()
    rating.save(update_fields=["status", "reviewed_by", "reviewed_at", "updated_at"])
    pairs_derive(user_id=rating.user_id, prompt_message_id=rating.message.parent_id)


def _rater(rating: Rating) -> dict:
    """Who rated, whether staff trust them, and how their feedback fared so far."""
    profile = FeedbackProfile.objects.filter(user_id=rating.user_id).first()
    counts = Rating.objects.filter(user_id=rating.user_id).aggregate(
        total=Count("id"),
        approved=Count("id", filter=Q(status=ReviewStatus.APPROVED)),
        excluded=Count("id", filter=Q(status=ReviewStatus.EXCLUDED)),
    )
    return {
        "name": rating.user.get_username(),
        "trusted": bool(profile and profile.trusted),
        **counts,
    }


def _context(reply: Message) -> list[dict]:
    """Exactly what the model was shown (system prompt included); for a reply that
    never recorded it, the conversation's path up to its question."""
    if reply.prompt_messages:
        return [
            {"role": turn.get("role", ""), "content": turn.get("content", "")}
            for turn in reply.prompt_messages
        ]
    path, message = [], reply.parent
    while message is not None:
        path.append({"role": message.role, "content": message.content})
        message = message.parent
    return path[::-1]


def _sources(reply: Message) -> list[dict]:
    """The numbered passages the reply saw, where each came from, whether it cited them."""
    return [
        {
            "number": source.get("number"),
            "filename": source.get("filename", ""),
            "page": source.get("page"),
            "heading": source.get("heading") or "",
            "text": source.get("text", ""),
            "cited": bool(source.get("cited")),
        }
        for source in reply.sources
    ]


def _sibling(rating: Rating) -> dict | None:
    """Another reply to the same question, with the rater's verdict on it, if any."""
    reply = rating.message
    if reply.parent_id is None:
        return None
    sibling = (
        Message.objects.filter(parent_id=reply.parent_id, role=Message.Role.ASSISTANT)
        .exclude(pk=reply.pk)
        .order_by("created_at", "id")
        .first()
    )
    if sibling is None:
        return None
    theirs = Rating.objects.filter(user_id=rating.user_id, message=sibling).first()
    pair = PreferencePair.objects.filter(
        user_id=rating.user_id, chosen__in=[reply, sibling], rejected__in=[reply, sibling]
    ).first()
    return {
        "id": sibling.pk,
        "content": sibling.content,
        "grounded": sibling.grounded,
        "value": None if theirs is None else ("up" if theirs.is_up else "down"),
        "preferred": None
        if pair is None
        else ("sibling" if pair.chosen_id == sibling.pk else "reply"),
    }
