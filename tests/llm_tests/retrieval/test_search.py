"""hybrid_search: BM25 and vectors fused by rank, or BM25 alone without a model."""

from __future__ import annotations

import pytest

from llm.retrieval.bm25 import Bm25Index
from llm.retrieval.fusion import reciprocal_rank_fusion
from llm.retrieval.search import hybrid_search
from llm.retrieval.vectors import VectorIndex, embed_texts

ALICE = {1, 2, 3, 4}
TEXTS = {
    1: "To reset the router, hold the button for ten seconds.",
    2: "Error E47 means the Zigbee radio lost its pairing.",
    3: "The warranty covers two years of normal use.",
    4: "Unplug everything before a thunderstorm.",
    10: "Bob's router notes: reset it by unplugging the power.",
}


@pytest.fixture(scope="module")
def bm25() -> Bm25Index:
    return Bm25Index.build(ids=list(TEXTS), texts=list(TEXTS.values()))


@pytest.fixture(scope="module")
def vectors(tiny_embeddings) -> VectorIndex:
    texts = list(TEXTS.values())
    return VectorIndex.build(
        ids=list(TEXTS),
        texts=texts,
        vectors=embed_texts(tiny_embeddings, texts),
        embeddings=tiny_embeddings,
    )


def test_it_uses_bm25_alone_without_vectors(bm25):
    """No embedding model: the hits and scores are BM25's."""
    hits = hybrid_search("Zigbee E47", bm25=bm25, vectors=None, k=3, allowed=None)
    assert hits == bm25.search("Zigbee E47", k=3)


def test_it_fuses_both_rankings(bm25, vectors):
    """With vectors, the result is RRF over each search's top candidates."""
    query = "reset the router"
    hits = hybrid_search(query, bm25=bm25, vectors=vectors, k=3, allowed=None, candidates=5)
    keyword = [chunk_id for chunk_id, _ in bm25.search(query, k=5)]
    meaning = [chunk_id for chunk_id, _ in vectors.search(query, k=5)]
    assert hits == reciprocal_rank_fusion([keyword, meaning], limit=3)


def test_it_finds_a_chunk_only_the_vectors_know(bm25, vectors):
    """A chunk sharing no word with the query can still come back through its vector."""
    query = "Zigbee"
    assert 3 not in {chunk_id for chunk_id, _ in bm25.search(query, k=10)}
    hits = hybrid_search(query, bm25=bm25, vectors=vectors, k=10, allowed=None)
    assert 3 in {chunk_id for chunk_id, _ in hits}


def test_it_puts_a_chunk_first_for_its_own_text(bm25, vectors):
    """Top of both lists is top of the fused one."""
    hits = hybrid_search(TEXTS[2], bm25=bm25, vectors=vectors, k=3, allowed=None)
    assert hits[0][0] == 2


def test_it_returns_only_the_owners_chunks(bm25, vectors):
    """allowed filters both searches: Bob's chunk never reaches the fused list."""
    hits = hybrid_search(TEXTS[10], bm25=bm25, vectors=vectors, k=10, allowed=ALICE)
    assert hits
    assert {chunk_id for chunk_id, _ in hits} <= ALICE


def test_it_honours_k(bm25, vectors):
    """No more than k come back however many candidates each search gives."""
    hits = hybrid_search("router", bm25=bm25, vectors=vectors, k=2, allowed=None, candidates=20)
    assert len(hits) == 2
