"""The JSON shapes of documents and passages (docs/protocol.md, "Documents")."""

from __future__ import annotations

from documents.models import Chunk, Document


def document_data(document: Document) -> dict:
    return {
        "id": document.pk,
        "filename": document.filename,
        "kind": document.kind,
        "size": document.size,
        "conversation": document.conversation_id,
        "status": document.status,
        "progress": document.progress,
        "error": (
            {"code": document.error_code, "message": document.error}
            if document.status == Document.Status.FAILED
            else None
        ),
        "pages": document.pages,
        "chunks": document.chunk_count,
        "created_at": document.created_at.isoformat(),
        "indexed_at": document.indexed_at.isoformat() if document.indexed_at else None,
    }


def passage_data(chunk: Chunk) -> dict:
    return {
        "id": chunk.pk,
        "document": chunk.document_id,
        "filename": chunk.document.filename,
        "page": chunk.page,
        "heading": chunk.heading,
        "ordinal": chunk.ordinal,
        "text": chunk.text,
    }
