from django.conf import settings
from django.db import models


class ModelVersion(models.Model):
    """A servable model: the base model, or a LoRA adapter trained on top of it."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"
        REJECTED = "rejected"

    name = models.CharField(max_length=200, unique=True)
    base_model = models.CharField(max_length=500)
    # Empty for the base model itself.
    adapter_path = models.CharField(max_length=1000, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    method = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    metrics = models.JSONField(default=dict, blank=True)
    gate_report = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="active"), name="one_active_version"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_base(self) -> bool:
        return not self.adapter_path


class ServingConfig(models.Model):
    """The canary: a share of new conversations served by a candidate version."""

    canary_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    canary_percent = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"canary {self.canary_version or '—'} at {self.canary_percent}%"


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        REJECTED = "rejected"  # trained, but the evaluation gate said no
        FAILED = "failed"
        SKIPPED = "skipped"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=32, default="schedule")  # schedule / manual
    method = models.CharField(max_length=32, blank=True)
    stage = models.CharField(max_length=64, blank=True)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    # [{"stage", "step", "loss", "time"}...], for the loss chart.
    history = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    reason = models.TextField(blank=True)  # why it was skipped or rejected
    # Lineage: exactly which feedback rows it learned from.
    rating_ids = models.JSONField(default=list, blank=True)
    pair_ids = models.JSONField(default=list, blank=True)
    dataset_hash = models.CharField(max_length=64, blank=True)
    parent_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="run"
    )
    task_id = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # True while queued or running, NULL after: unique, so the database itself
    # refuses a second run in flight, whichever worker or tick asks.
    in_flight = models.BooleanField(null=True, unique=True, default=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0


class ArenaMatch(models.Model):
    """Two anonymous replies to one user message, from two versions, and the vote.

    Side A and side B are drawn at random; the user sees neither version's name
    until they vote. A decisive vote becomes a preference pair (after review,
    training data like any other).
    """

    class Winner(models.TextChoices):
        A = "a"
        B = "b"
        TIE = "tie"
        BOTH_BAD = "both_bad"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="arena_matches"
    )
    prompt_message = models.ForeignKey(
        "chat.Message", on_delete=models.CASCADE, related_name="arena_matches"
    )
    reply_a = models.ForeignKey("chat.Message", on_delete=models.CASCADE, related_name="+")
    reply_b = models.ForeignKey("chat.Message", on_delete=models.CASCADE, related_name="+")
    version_a = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    version_b = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    winner = models.CharField(max_length=16, choices=Winner.choices, blank=True)
    pair = models.ForeignKey(
        "feedback.PreferencePair",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    voted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["voted_at"])]
        verbose_name_plural = "arena matches"

    def __str__(self) -> str:
        return f"Arena match {self.pk}: {self.winner or 'no vote yet'}"
