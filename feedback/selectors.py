"""Reads for feedback, scoped to their owner."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from chat.models import Conversation
from feedback.models import (
    ALL_REASONS,
    DOWN_REASONS,
    GROUNDED_ONLY_REASONS,
    UP_REASONS,
    FeedbackProfile,
    PreferencePair,
    Rating,
)


def profile_get(*, user: AbstractBaseUser) -> FeedbackProfile:
    """The user's feedback settings (defaults when never saved)."""
    return FeedbackProfile.objects.filter(user=user).first() or FeedbackProfile(user=user)


def conversation_feedback(*, user: AbstractBaseUser, conversation: Conversation) -> dict:
    """The user's ratings by reply id, explicit choices by user-message id, and the
    replies they wrote by the id of the reply each rewrote."""
    ratings = Rating.objects.filter(user=user, message__conversation=conversation)
    pairs = PreferencePair.objects.filter(user=user, conversation=conversation)
    choices = pairs.filter(source=PreferencePair.Source.EXPLICIT).values_list(
        "prompt_message_id", "chosen_id"
    )
    written = pairs.filter(source=PreferencePair.Source.WRITTEN).values_list(
        "rejected_id", "chosen_id"
    )
    return {
        "ratings": {str(rating.message_id): rating_data(rating) for rating in ratings},
        "preferences": {str(prompt_id): chosen_id for prompt_id, chosen_id in choices},
        "written": {str(rated_id): reply_id for rated_id, reply_id in written},
    }


def written_pair_data(pair: PreferencePair) -> dict:
    """A written reply's pair as its writer sees it: which reply it beat, its review state."""
    return {"id": pair.pk, "rejected": pair.rejected_id, "status": pair.status}


def rating_data(rating: Rating | None) -> dict | None:
    if rating is None:
        return None
    return {
        "value": "up" if rating.is_up else "down",
        "reasons": rating.reasons,
        "comment": rating.comment,
        "status": rating.status,
    }


def reason_choices() -> dict:
    """The preset reasons, for the rating form; ``grounded_only`` ones fit only a reply
    grounded on retrieved passages."""
    return {
        "up": UP_REASONS,
        "down": DOWN_REASONS,
        "all": ALL_REASONS,
        "grounded_only": sorted(GROUNDED_ONLY_REASONS),
    }
