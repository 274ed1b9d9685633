"""Merging ranked lists from different searches into one (reciprocal rank fusion).

BM25 scores and cosine similarities are on unrelated scales; ranks are not.
RRF (Cormack, Clarke and Buettcher, 2009) rewards an id for ranking high in
any list and more for ranking high in several.
"""

from __future__ import annotations


def reciprocal_rank_fusion(
    rankings: list[list[int]], *, k: int = 60, limit: int | None = None
) -> list[tuple[int, float]]:
    """(id, fused score) best first: each id scores Σ 1 / (k + rank), ranks from 1.

    ``k`` damps the lead of the very top ranks (60 is the paper's value). Ties
    keep the order in which ids first appear, list by list. ``limit`` keeps
    only that many.
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    # sorted() is stable and dicts keep insertion order: equal scores stay in first-seen order.
    fused = sorted(scores.items(), key=lambda pair: pair[1], reverse=True)
    return fused if limit is None else fused[:limit]
