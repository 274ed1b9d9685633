"""Finding a question's chunks with keywords and meaning together (hybrid search),
and a follow-up's with the turn before it."""

from __future__ import annotations

from collections.abc import Collection

from llm.retrieval.bm25 import Bm25Index
from llm.retrieval.fusion import reciprocal_rank_fusion
from llm.retrieval.vectors import VectorIndex


def hybrid_search(
    query: str,
    *,
    bm25: Bm25Index,
    vectors: VectorIndex | None,
    k: int,
    allowed: Collection[int] | None,
    candidates: int = 20,
) -> list[tuple[int, float]]:
    """Up to ``k`` (chunk id, score) pairs for ``query``, best first.

    Without ``vectors`` (no embedding model configured) this is BM25 alone,
    with BM25's scores. Otherwise each search proposes its top ``candidates``
    and reciprocal rank fusion orders them; scores are then RRF scores.
    ``allowed`` limits both searches to those chunk ids.
    """
    if vectors is None:
        return bm25.search(query, k=k, allowed=allowed)
    keyword = bm25.search(query, k=candidates, allowed=allowed)
    meaning = vectors.search(query, k=candidates, allowed=allowed)
    rankings = [[chunk_id for chunk_id, _ in keyword], [chunk_id for chunk_id, _ in meaning]]
    return reciprocal_rank_fusion(rankings, limit=k)


def follow_up_search(
    query: str,
    *,
    earlier: str,
    bm25: Bm25Index,
    vectors: VectorIndex | None,
    k: int,
    allowed: Collection[int] | None,
    candidates: int = 20,
) -> list[tuple[int, float]]:
    """Up to ``k`` (chunk id, score) pairs for a conversation's newest question.

    A follow-up often leaves its subject to the turn before ("and how long is
    its warranty?"). So ``query`` is searched alone and after ``earlier`` (the
    user's previous message), and reciprocal rank fusion merges the two: what
    both find comes first, and a question on a new subject still finds its
    own passages (benchmarks/retrieval.py measures both). Without ``earlier``
    this is ``hybrid_search``; otherwise scores are RRF scores.
    """
    if not earlier.strip():
        return hybrid_search(query, bm25=bm25, vectors=vectors, k=k, allowed=allowed)
    rankings = [
        [
            chunk_id
            for chunk_id, _ in hybrid_search(
                text, bm25=bm25, vectors=vectors, k=candidates, allowed=allowed
            )
        ]
        for text in (query, f"{earlier}\n{query}")
    ]
    return reciprocal_rank_fusion(rankings, limit=k)
