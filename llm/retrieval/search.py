"""Finding a question's chunks with keywords and meaning together (hybrid search)."""

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
