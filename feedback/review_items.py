"""What the focus review queue shows of one item: a rating, or a preference pair.

Both show what the model saw (its exact prompt, the passages retrieved into it)
and who gave the feedback; a rating its reply and a sibling, a pair its two
replies side by side, the chosen one marked and the pair's source named.
"""

from __future__ import annotations

from django.db.models import Count, Q

from chat.models import Message
from chat.refusals import Refusal
from feedback.models import ALL_REASONS, FeedbackProfile, PreferencePair, Rating, ReviewStatus

# How each source of pairs reads in the queue.
SOURCE_LABELS = {
    PreferencePair.Source.EXPLICIT: "Marked better by the user",
    PreferencePair.Source.DERIVED: "From the user's opposite thumbs",
    PreferencePair.Source.ARENA: "Arena vote",
    PreferencePair.Source.WRITTEN: "Written by the user",
}


def rating_item(*, rating_id: int) -> dict:
    """One rating as the focus view shows it: the conversation the model saw, the
    passages retrieved into it (empty for a plain reply), the rated reply, its
    sibling, the reasons as labels, the rater's standing."""
    rating = (
        Rating.objects.select_related("message", "user", "reviewed_by").filter(pk=rating_id).first()
    )
    if rating is None:
        raise Refusal("not_found", "No such rating (it may have been withdrawn).", "rating")
    return {
        "kind": "rating",
        "id": rating.pk,
        "status": rating.status,
        "value": "up" if rating.is_up else "down",
        "reasons": _reason_labels(rating.reasons),
        "comment": rating.comment,
        "model_version": rating.model_version,
        **_review_state(rating),
        "rater": _rater(rating.user),
        "context": _context(rating.message),
        "sources": _sources(rating.message),
        "reply": {"id": rating.message_id, "content": rating.message.content},
        "sibling": _sibling(rating),
    }


def pair_item(*, pair_id: int) -> dict:
    """One preference pair as the focus view shows it: the prompt it is trained
    under (the chosen reply's, as exports use it), both replies with the user's
    thumbs on them, the chosen one marked, and where the pair came from."""
    pair = (
        PreferencePair.objects.select_related("chosen", "rejected", "user", "reviewed_by")
        .filter(pk=pair_id)
        .first()
    )
    if pair is None:
        raise Refusal("not_found", "No such pair (it may have been withdrawn).", "pair")
    return {
        "kind": "pair",
        "id": pair.pk,
        "status": pair.status,
        "source": pair.source,
        "source_label": SOURCE_LABELS.get(pair.source, pair.source),
        **_review_state(pair),
        "rater": _rater(pair.user),
        "context": _context(pair.chosen),
        "sources": _sources(pair.chosen),
        "chosen": _pair_reply(pair.chosen, pair.user_id),
        "rejected": _pair_reply(pair.rejected, pair.user_id),
    }


# -- helpers ----------------------------------------------------------------------


def _review_state(item: Rating | PreferencePair) -> dict:
    return {
        "created_at": item.created_at.isoformat(),
        "reviewed_by": item.reviewed_by.get_username() if item.reviewed_by else None,
        "reviewed_at": item.reviewed_at.isoformat() if item.reviewed_at else None,
    }


def _reason_labels(reasons: list[str]) -> list[dict]:
    return [{"key": key, "label": ALL_REASONS.get(key, key)} for key in reasons]


def _rater(user) -> dict:
    """Who gave the feedback, whether staff trust them, and how their ratings fared so far."""
    profile = FeedbackProfile.objects.filter(user_id=user.pk).first()
    counts = Rating.objects.filter(user_id=user.pk).aggregate(
        total=Count("id"),
        approved=Count("id", filter=Q(status=ReviewStatus.APPROVED)),
        excluded=Count("id", filter=Q(status=ReviewStatus.EXCLUDED)),
    )
    return {
        "name": user.get_username(),
        "trusted": bool(profile and profile.trusted),
        **counts,
    }


def _pair_reply(reply: Message, user_id: int) -> dict:
    """One side of a pair: its text, who wrote it, and the user's thumb on it, if any."""
    rating = Rating.objects.filter(user_id=user_id, message=reply).first()
    return {
        "id": reply.pk,
        "content": reply.content,
        "model_version": reply.model_version,
        "written_by": "user" if reply.written_by_user else "model",
        "grounded": reply.grounded,
        "rating": None
        if rating is None
        else {
            "value": "up" if rating.is_up else "down",
            "reasons": _reason_labels(rating.reasons),
            "comment": rating.comment,
        },
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
        "written_by": "user" if sibling.written_by_user else "model",
        "value": None if theirs is None else ("up" if theirs.is_up else "down"),
        "preferred": None
        if pair is None
        else ("sibling" if pair.chosen_id == sibling.pk else "reply"),
    }
