"""Writes for documents: upload, index (the Celery task's body), delete.

An upload is checked (size, type against content) and stored before the web
request answers; parsing, splitting, embedding and indexing run in the
``documents.index`` task. A document's chunks and the index that holds them
land in one transaction with its "ready" state, so a failure at any step
leaves no passage of it anywhere.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import timedelta
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from chat.models import Conversation
from chat.refusals import Refusal
from documents import indexes
from documents.models import Chunk, Document, SearchIndex
from llm.retrieval.loaders import DocumentError, detect_kind, load_pages
from llm.retrieval.splitting import SplitKnobs, searchable_text, split_pages

logger = logging.getLogger(__name__)

_EXTENSIONS = {"text": ".txt", "markdown": ".md", "html": ".html", "pdf": ".pdf"}
_HEAD_BYTES = 4096
# Multipart boundaries, headers and the other form fields around the file.
_FORM_OVERHEAD_BYTES = 64 * 1024


def document_upload(
    *,
    owner: AbstractBaseUser,
    uploaded: UploadedFile,
    conversation: Conversation | None = None,
    declared_size: int | None = None,
) -> Document:
    """Check and store an uploaded file, then queue its indexing.

    ``declared_size`` is the size the client says it sent: a body cut short on
    the way (an interrupted upload) is refused rather than indexed in part.
    """
    filename = Path(uploaded.name or "").name[:255] or "document"
    _check_size(filename, uploaded.size, declared_size)
    kind = _kind_of(filename, uploaded)
    stored, size, digest = _store(owner, uploaded, kind)
    document = Document.objects.create(
        owner=owner,
        conversation=conversation,
        filename=filename,
        content_type=(uploaded.content_type or "")[:100],
        kind=kind,
        size=size,
        sha256=digest,
        stored_path=stored,
    )
    transaction.on_commit(lambda: _queue_indexing(document.pk))
    return document


def document_delete(*, document: Document) -> None:
    """Forget a document: its file, its passages, and (in a task) its place in the index."""
    document.delete()


def document_forget(sender: type, instance: Document, **kwargs: object) -> None:
    """After any delete of a document (a conversation's or user's included): remove its
    file and rebuild its owner's index once the delete is committed."""
    path, owner_id = file_path(instance), instance.owner_id

    def forget() -> None:
        path.unlink(missing_ok=True)
        _queue_rebuild(owner_id)

    transaction.on_commit(forget)


def file_path(document: Document) -> Path:
    return settings.DOCUMENTS_DIR / document.stored_path


def document_index(*, document_id: int) -> None:
    """Parse, split, embed and index one document (idempotent: a finished one is left)."""
    document = _start_attempt(document_id)
    if document is None:
        return
    if document.attempts > settings.DOCUMENTS_MAX_ATTEMPTS:
        attempts = settings.DOCUMENTS_MAX_ATTEMPTS
        _fail(
            document,
            "worker_lost",
            f"Indexing stopped {attempts} times before it finished (the worker died or "
            "stalled, perhaps on this file's size); nothing was kept.",
        )
        return
    try:
        _state(document, Document.Status.PARSING, 0.05)
        pieces = _passages_of(document)
        _state(document, Document.Status.INDEXING, 0.4)
        _commit_ready(document, pieces, _vectors_of(document, pieces))
    except DocumentError as error:
        _fail(document, error.code, error.message)
    except SoftTimeLimitExceeded:
        _fail(document, "timeout", "Indexing took longer than the time limit; nothing was kept.")
    except Exception as error:  # noqa: BLE001 - the document fails, the worker lives
        logger.exception("indexing document %s failed", document_id)
        _fail(document, "indexing_failed", f"Indexing failed: {error}. Nothing was kept.")


def stale_documents_requeue(*, older_than_seconds: int) -> int:
    """Queue again the documents whose indexing went silent (its message or worker
    was lost); each try counts, and the next past the limit fails the document."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = Document.objects.exclude(
        status__in=[Document.Status.READY, Document.Status.FAILED]
    ).filter(updated_at__lt=cutoff)
    ids = list(stale.values_list("pk", flat=True))
    Document.objects.filter(pk__in=ids).update(updated_at=timezone.now())
    for document_id in ids:
        _queue_indexing(document_id)
    return len(ids)


def search_index_rebuild(*, owner_id: int) -> None:
    """Rebuild an owner's index from their ready documents (after a delete); an
    owner who was deleted leaves no index folder behind."""
    if not get_user_model().objects.filter(pk=owner_id).exists():
        indexes.prune(owner_id=owner_id, keep_from=None)
        return
    with transaction.atomic():
        index = _locked_index(owner_id)
        _build(index)


def upload_check_length(*, content_length: int) -> None:
    """Refuse a request body that cannot hold an allowed file, before reading it."""
    limit = settings.DOCUMENTS_MAX_UPLOAD_BYTES
    if content_length > limit + _FORM_OVERHEAD_BYTES:
        raise Refusal(
            "too_large",
            f"The upload is {size_text(content_length)}; files may be at most {size_text(limit)}.",
            "file",
        )


def _check_size(filename: str, size: int, declared_size: int | None) -> None:
    limit = settings.DOCUMENTS_MAX_UPLOAD_BYTES
    if size > limit:
        raise Refusal(
            "too_large",
            f"{filename} is {size_text(size)}; files may be at most {size_text(limit)}.",
            "file",
        )
    if declared_size is not None and declared_size != size:
        raise Refusal(
            "incomplete_upload",
            f"Only {size} of {declared_size} bytes of {filename} arrived; upload it again.",
            "file",
        )
    if size == 0:
        raise Refusal("empty_document", f"{filename} is empty.", "file")


def _kind_of(filename: str, uploaded: UploadedFile) -> str:
    uploaded.seek(0)
    head = uploaded.read(_HEAD_BYTES)
    uploaded.seek(0)
    try:
        return detect_kind(filename=filename, declared_type=uploaded.content_type or "", head=head)
    except DocumentError as error:
        raise Refusal(error.code, error.message, "file") from None


def _store(owner: AbstractBaseUser, uploaded: UploadedFile, kind: str) -> tuple[str, int, str]:
    """Write the upload under DOCUMENTS_DIR; returns its relative path, size and sha256."""
    relative = Path("files") / f"owner-{owner.pk}" / f"{uuid.uuid4().hex}{_EXTENSIONS[kind]}"
    target = settings.DOCUMENTS_DIR / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    partial = target.with_suffix(".part")
    with open(partial, "wb") as output:
        for piece in uploaded.chunks():
            digest.update(piece)
            size += len(piece)
            output.write(piece)
    partial.rename(target)
    return relative.as_posix(), size, digest.hexdigest()


def _passages_of(document: Document) -> list:
    pages = load_pages(file_path(document), kind=document.kind, filename=document.filename)
    if document.kind == "pdf":
        document.pages = max((page.metadata.get("page") or 0 for page in pages), default=0)
    knobs = SplitKnobs(
        chunk_chars=settings.DOCUMENTS_CHUNK_CHARS, overlap_chars=settings.DOCUMENTS_CHUNK_OVERLAP
    )
    pieces = split_pages(pages, kind=document.kind, knobs=knobs)
    if not pieces:
        raise DocumentError("empty_document", f"{document.filename} has no text to search.")
    _state(document, Document.Status.PARSING, 0.3)
    return pieces


def _vectors_of(document: Document, pieces: list) -> list[bytes] | None:
    """The pieces' vectors (None without an embedding model), embedded as indexed."""
    texts = [
        searchable_text(
            piece.page_content,
            filename=document.filename,
            heading=piece.metadata.get("heading") or "",
        )
        for piece in pieces
    ]
    return indexes.embed(
        texts,
        progress=lambda share: _state(document, Document.Status.INDEXING, 0.4 + 0.5 * share),
    )


def _commit_ready(document: Document, pieces: list, vectors: list[bytes] | None) -> None:
    with transaction.atomic():
        index = _locked_index(document.owner_id)
        current = Document.objects.select_for_update().filter(pk=document.pk).first()
        if current is None or current.finished:
            return  # deleted meanwhile, or a second delivery of the task finished first
        Chunk.objects.bulk_create(
            Chunk(
                document=document,
                owner_id=document.owner_id,
                ordinal=ordinal,
                page=piece.metadata.get("page"),
                heading=(piece.metadata.get("heading") or "")[:500],
                text=piece.page_content,
                embedding=None if vectors is None else vectors[ordinal],
            )
            for ordinal, piece in enumerate(pieces)
        )
        document.status = Document.Status.READY
        document.progress = 1.0
        document.chunk_count = len(pieces)
        document.embedding_model = indexes.embedding_model_name() if vectors else ""
        document.indexed_at = timezone.now()
        document.save()
        _build(index)


def _start_attempt(document_id: int) -> Document | None:
    """The document, its attempt counted; None if it is gone or already finished."""
    with transaction.atomic():
        document = Document.objects.select_for_update().filter(pk=document_id).first()
        if document is None or document.finished:
            return None
        document.attempts += 1
        document.save(update_fields=["attempts", "updated_at"])
    return document


def _locked_index(owner_id: int) -> SearchIndex:
    SearchIndex.objects.get_or_create(owner_id=owner_id)
    return SearchIndex.objects.select_for_update().get(owner_id=owner_id)


def _build(index: SearchIndex) -> None:
    """Write the owner's next index version from their ready chunks and point the row at it."""
    chunks = Chunk.objects.filter(owner_id=index.owner_id, document__status=Document.Status.READY)
    built = indexes.index_write(owner_id=index.owner_id, version=index.version + 1, chunks=chunks)
    index.version += 1
    index.chunk_count = built.chunk_count
    index.embedding_model = built.embedding_model
    index.built_at = timezone.now()
    index.save()
    owner_id, version = index.owner_id, index.version
    transaction.on_commit(lambda: indexes.prune(owner_id=owner_id, keep_from=version - 1))


def _state(document: Document, status: str, progress: float) -> None:
    document.status, document.progress = status, round(progress, 3)
    Document.objects.filter(pk=document.pk).exclude(
        status__in=[Document.Status.READY, Document.Status.FAILED]
    ).update(
        status=status, progress=document.progress, pages=document.pages, updated_at=timezone.now()
    )


def _fail(document: Document, code: str, message: str) -> None:
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.FAILED,
        progress=0.0,
        error_code=code,
        error=message,
        chunk_count=0,
        updated_at=timezone.now(),
    )


def size_text(size: int) -> str:
    """A byte count as people read it: 512 bytes, 1.5 KB, 2.0 MB."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _queue_indexing(document_id: int) -> None:
    from documents.tasks import index_document  # tasks import services

    index_document.delay(document_id)


def _queue_rebuild(owner_id: int) -> None:
    from documents.tasks import rebuild_index

    rebuild_index.delay(owner_id)
