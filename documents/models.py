"""Uploaded documents, their passages (chunks), and each owner's search index.

A document's chunks are written in the same transaction that marks it ready,
so a failed or interrupted indexing leaves no chunk behind: retrieval only
ever sees whole documents.
"""

from django.conf import settings
from django.db import models

from chat.models import Conversation


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PARSING = "parsing"
        INDEXING = "indexing"
        READY = "ready"
        FAILED = "failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents"
    )
    # Attached to one conversation, or (null) in the owner's library.
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="documents"
    )
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=16)  # text, markdown, html, pdf
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    # Relative to DOCUMENTS_DIR; served only through the owner-checked API.
    stored_path = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    error_code = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    pages = models.PositiveIntegerField(null=True, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    # Indexing runs started: more than one means a worker died (or stalled) mid-way.
    attempts = models.PositiveSmallIntegerField(default=0)
    embedding_model = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["conversation", "status"]),
        ]

    def __str__(self) -> str:
        return self.filename

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.FAILED)


class Chunk(models.Model):
    """One passage of a ready document, as retrieval returns it."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    # Copied from the document: the retriever filters by owner without a join.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    ordinal = models.PositiveIntegerField()
    page = models.PositiveIntegerField(null=True, blank=True)
    heading = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    # float32 vector from DOCUMENTS_EMBEDDING_MODEL, so rebuilding an index re-embeds nothing.
    embedding = models.BinaryField(null=True, blank=True)

    class Meta:
        ordering = ["document", "ordinal"]
        indexes = [models.Index(fields=["owner", "document"])]

    def __str__(self) -> str:
        return f"{self.document} #{self.ordinal}"


class SearchIndex(models.Model):
    """Each owner's BM25 (and vector) index on disk, rebuilt from their chunks.

    ``version`` names the folder the current index lives in; the row is also
    the lock that keeps two indexing tasks of one owner from interleaving.
    """

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="search_index"
    )
    version = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=300, blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    built_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Search index of {self.owner} (v{self.version})"
