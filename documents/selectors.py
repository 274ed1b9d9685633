"""Reads for documents, always scoped to their owner: another user's document,
passage or search hit answers exactly like a missing one."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from chat.models import Conversation
from chat.refusals import Refusal
from documents.indexes import owner_index
from documents.models import Chunk, Document
from llm.retrieval.passages import Passage
from llm.retrieval.search import follow_up_search


def document_list(
    *, owner: AbstractBaseUser, conversation: Conversation | None = None, library: bool = False
) -> QuerySet[Document]:
    """The owner's documents: all, those attached to ``conversation``, or the library's."""
    documents = Document.objects.filter(owner=owner)
    if conversation is not None:
        return documents.filter(conversation=conversation)
    if library:
        return documents.filter(conversation__isnull=True)
    return documents


def document_get(*, owner: AbstractBaseUser, document_id: object) -> Document:
    document = Document.objects.filter(owner=owner, pk=parse_id(document_id, "document")).first()
    if document is None:
        raise Refusal("not_found", "No such document.", "document")
    return document


def passage_get(*, owner: AbstractBaseUser, chunk_id: object) -> Chunk:
    chunk = (
        Chunk.objects.filter(owner=owner, pk=parse_id(chunk_id, "passage"))
        .select_related("document")
        .first()
    )
    if chunk is None:
        raise Refusal("not_found", "No such passage.", "passage")
    return chunk


def search_scope(
    *, owner: AbstractBaseUser, conversation: Conversation, document_ids: list | None = None
) -> set[int]:
    """Ready documents a message in ``conversation`` searches.

    By default those attached to it, plus the owner's library when the
    conversation says so. ``document_ids`` narrows it to named documents, each
    of which must be the owner's.
    """
    ready = Document.objects.filter(owner=owner, status=Document.Status.READY)
    if document_ids is not None:
        wanted = {parse_id(value, "documents") for value in document_ids}
        found = set(ready.filter(pk__in=wanted).values_list("pk", flat=True))
        if found != wanted:
            raise Refusal("not_found", "No such document.", "documents")
        return found
    scope = Q(conversation=conversation)
    if conversation.use_library:
        scope |= Q(conversation__isnull=True)
    return set(ready.filter(scope).values_list("pk", flat=True))


def passages_for(
    *, owner: AbstractBaseUser, query: str, scope: set[int], k: int, earlier: str = ""
) -> list[Passage]:
    """The ``k`` passages of the documents in ``scope`` that best match ``query``,
    read as a follow-up to ``earlier`` (the user's previous message) if given."""
    index = owner_index(owner.pk) if scope else None
    if index is None:
        return []
    allowed = [chunk for chunk, document in index.chunk_documents.items() if document in scope]
    hits = follow_up_search(
        query, earlier=earlier, bm25=index.bm25, vectors=index.vectors, k=k, allowed=allowed
    )
    # The owner filter again: whatever an index file says, no one else's text comes back.
    chunks = Chunk.objects.filter(owner=owner, pk__in=[chunk for chunk, _ in hits])
    by_id = {chunk.pk: chunk for chunk in chunks.select_related("document")}
    return [passage_of(by_id[chunk], score) for chunk, score in hits if chunk in by_id]


def passage_of(chunk: Chunk, score: float = 0.0) -> Passage:
    return Passage(
        chunk_id=chunk.pk,
        document_id=chunk.document_id,
        filename=chunk.document.filename,
        text=chunk.text,
        page=chunk.page,
        heading=chunk.heading,
        score=float(score),
    )


def parse_id(value: object, field: str) -> int:
    """``value`` as a row id, or a Refusal naming ``field`` (``"²"`` is a digit to
    ``str.isdigit`` but not to ``int``: only ASCII digits pass)."""
    text = str(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | str)
        or not (text.isascii() and text.isdigit())
    ):
        raise Refusal("invalid", f"A {field} id must be a positive whole number.", field)
    return int(value)
