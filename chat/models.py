from django.conf import settings
from django.db import models
from django.db.models import Q


def grounded(path: str = "") -> Q:
    """The query form of ``Message.grounded``: retrieved passages were in the
    reply's prompt. ``path`` reaches the message from another model, e.g.
    ``grounded("message__")`` on ratings."""
    return ~Q(**{f"{path}sources": []})


class Conversation(models.Model):
    class Source(models.TextChoices):
        CHAT = "chat", "Chat"  # the browser chat (and the arena)
        API = "api", "API"  # another app, through /v1/chat/completions with an API key

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.CHAT)
    title = models.CharField(max_length=200, blank=True)
    system_prompt = models.TextField(blank=True)
    temperature = models.FloatField()
    top_p = models.FloatField()
    max_new_tokens = models.PositiveIntegerField()
    # Search all of the owner's documents, not only those attached to this conversation.
    use_library = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    """One turn. Replies to the same user message are siblings (regenerate)."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming"
        COMPLETE = "complete"
        STOPPED = "stopped"
        FAILED = "failed"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    # A reply the user wrote themselves under a reply they rated thumbs down
    # ("Write a better reply"): a sibling of that reply, with no model version.
    written_by_user = models.BooleanField(default=False)
    # The model version that wrote a reply, and exactly what it was shown (for a
    # written reply: the prompt of the reply it rewrote, the one its writer answered).
    model_version = models.CharField(max_length=200, blank=True)
    prompt_messages = models.JSONField(null=True, blank=True)
    # The passages retrieved into that prompt (a copy: deleting the document keeps
    # what the reply saw), each with its citation number and whether the reply used it.
    sources = models.JSONField(default=list, blank=True)
    sampling = models.JSONField(null=True, blank=True)
    finish_reason = models.CharField(max_length=16, blank=True)
    # Why a reply failed: ``error`` in the user's words (the UI and API show it),
    # ``error_detail`` for staff (server addresses, exceptions; the admin only).
    error = models.TextField(blank=True)
    error_detail = models.TextField(blank=True)
    # The web process that streams (or streamed) the reply, "host:pid:start": when
    # that process is gone, a reply it left streaming is failed at once.
    streamed_by = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    time_to_first_token_ms = models.FloatField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["conversation", "created_at"]),
            models.Index(fields=["status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk}: {self.content[:40]}"

    @property
    def grounded(self) -> bool:
        """Whether retrieved passages were in this reply's prompt (in a query: ``grounded()``)."""
        return bool(self.sources)

    @property
    def tokens_per_second(self) -> float | None:
        if not self.completion_tokens or not self.duration_ms:
            return None
        return self.completion_tokens / (self.duration_ms / 1000)


class ApiKey(models.Model):
    """A key another app uses to talk as its owner (/v1/). Only its hash is stored:
    the key itself is shown once, when it is created (chat.keys)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    # The first characters of the key, to tell keys apart in lists ("lc-AbCd…").
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Revoked by its owner (settings page) or disabled by staff (the admin): refused either way.
    revoked_at = models.DateTimeField(null=True, blank=True)
    disabled = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name or 'API key'} ({self.prefix}…) of {self.owner}"

    @property
    def usable(self) -> bool:
        return self.revoked_at is None and not self.disabled
