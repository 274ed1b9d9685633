"""The unit of retrieval, as the chain and the prompt see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk of a document.

    ``number`` is its citation number in one prompt ([1], [2], ...), set when the
    chain lays the passages out; ``chunk_id`` and ``document_id`` are the stored
    rows it came from.
    """

    chunk_id: int
    document_id: int
    filename: str
    text: str
    page: int | None = None
    heading: str = ""
    score: float = 0.0
    number: int = 0

    def as_dict(self) -> dict:
        return {
            "number": self.number,
            "chunk": self.chunk_id,
            "document": self.document_id,
            "filename": self.filename,
            "page": self.page,
            "heading": self.heading,
            "text": self.text,
            "score": self.score,
        }
