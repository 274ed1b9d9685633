from django.conf import settings
from django.db import models

from chat.models import Conversation, Message

# Preset reasons offered after a rating; stored as their keys.
UP_REASONS = {
    "helpful": "Helpful",
    "accurate": "Accurate",
    "well_written": "Well written",
}
DOWN_REASONS = {
    "wrong": "Wrong",
    "unhelpful": "Unhelpful",
    "harmful": "Harmful or unsafe",
    "off_topic": "Off-topic",
    "too_long": "Too long",
    "ignored_instructions": "Did not follow instructions",
    "unsupported": "Not supported by the sources",
}
ALL_REASONS = {**UP_REASONS, **DOWN_REASONS}
# Reasons that only make sense for a reply grounded on retrieved passages.
GROUNDED_ONLY_REASONS = frozenset({"unsupported"})


class ReviewStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    EXCLUDED = "excluded"


class FeedbackProfile(models.Model):
    """Per-user feedback settings. Missing row = the defaults."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feedback_profile"
    )
    # "Allow my conversations to be used to improve the model."
    share_for_training = models.BooleanField(default=True)
    # Staff mark a user trusted; with FEEDBACK_AUTO_APPROVE_TRUSTED their ratings skip review.
    trusted = models.BooleanField(default=False)
    # "Show me side-by-side replies from two model versions now and then" (the arena).
    arena_opt_in = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Feedback settings of {self.user}"


class Reviewable(models.Model):
    status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Rating(Reviewable):
    """One user's thumbs up or down on one assistant reply (changeable)."""

    class Value(models.IntegerChoices):
        UP = 1, "Thumbs up"
        DOWN = -1, "Thumbs down"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ratings"
    )
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="ratings")
    value = models.SmallIntegerField(choices=Value.choices)
    reasons = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    # Copied from the reply so stats and filters need no join on messages.
    model_version = models.CharField(max_length=200, blank=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "message"], name="one_rating_per_user_reply")
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["model_version", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_value_display()} on reply {self.message_id} by {self.user}"

    @property
    def is_up(self) -> bool:
        return self.value == self.Value.UP


class PreferencePair(Reviewable):
    """Two sibling replies to one user message, one preferred over the other."""

    class Source(models.TextChoices):
        EXPLICIT = "explicit"  # the user marked the better sibling
        DERIVED = "derived"  # siblings carry opposite ratings
        ARENA = "arena"  # a vote between two anonymous versions' replies
        WRITTEN = "written"  # the user wrote the reply they wanted under a thumbs-down

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference_pairs"
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="preference_pairs"
    )
    prompt_message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    chosen = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    rejected = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "chosen", "rejected", "source"], name="one_pair_per_choice"
            )
        ]

    def __str__(self) -> str:
        return f"{self.chosen_id} ≻ {self.rejected_id} ({self.source})"


class ReviewAction(models.Model):
    """One reviewer's decision on one rating or one preference pair: the audit trail,
    and what undo reverts. Exactly one of ``rating`` and ``pair`` is set."""

    rating = models.ForeignKey(
        Rating, null=True, blank=True, on_delete=models.CASCADE, related_name="review_actions"
    )
    pair = models.ForeignKey(
        PreferencePair,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="review_actions",
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_status = models.CharField(max_length=16, choices=ReviewStatus.choices)
    status = models.CharField(max_length=16, choices=ReviewStatus.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["reviewer", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rating__isnull=False, pair__isnull=True)
                | models.Q(rating__isnull=True, pair__isnull=False),
                name="review_action_has_one_target",
            )
        ]

    def __str__(self) -> str:
        target = f"rating {self.rating_id}" if self.rating_id else f"pair {self.pair_id}"
        return f"{self.reviewer} marked {target} {self.status}"

    @property
    def target(self) -> Rating | PreferencePair:
        """What was decided: the rating or the pair."""
        return self.rating if self.rating_id else self.pair
