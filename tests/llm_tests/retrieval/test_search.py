"""hybrid_search: BM25 and vectors fused by rank, or BM25 alone without a model;
follow_up_search: a conversation's newest question with the turn before it."""

from __future__ import annotations

import pytest

from llm.retrieval.bm25 import Bm25Index
from llm.retrieval.fusion import reciprocal_rank_fusion
from llm.retrieval.search import follow_up_search, hybrid_search
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


PRODUCTS = {
    20: "Brevona X2 warranty: the warranty covers three years, the warranty card is inside.",
    21: "The Skylark V7 warranty covers one year.",
    22: "The Brevona X2 descales in 27 minutes.",
    23: "The Skylark V7 flies for 41 minutes.",
}


@pytest.fixture(scope="module")
def products() -> Bm25Index:
    return Bm25Index.build(ids=list(PRODUCTS), texts=list(PRODUCTS.values()))


def test_a_follow_up_finds_the_passage_of_the_subject_named_before(products):
    """ "How long is the warranty?" after the Skylark: the Skylark's warranty,
    though the question alone prefers the Brevona's wordier one."""
    question = "How long is the warranty?"
    [(alone, _), *_] = hybrid_search(question, bm25=products, vectors=None, k=4, allowed=None)
    assert alone == 20
    hits = follow_up_search(
        question,
        earlier="Tell me about the Skylark V7.",
        bm25=products,
        vectors=None,
        k=4,
        allowed=None,
    )
    assert hits[0][0] == 21


def test_a_question_on_a_new_subject_finds_its_own_passage(products, tiny_embeddings):
    """The earlier turn does not pull the answer back to the old subject, with
    BM25 alone or hybrid."""
    texts = list(PRODUCTS.values())
    vectors = VectorIndex.build(
        ids=list(PRODUCTS),
        texts=texts,
        vectors=embed_texts(tiny_embeddings, texts),
        embeddings=tiny_embeddings,
    )
    for index in (None, vectors):
        hits = follow_up_search(
            "How long does the Brevona X2 take to descale?",
            earlier="How long is the Skylark V7 warranty?",
            bm25=products,
            vectors=index,
            k=2,
            allowed=None,
        )
        assert hits[0][0] == 22


def test_a_follow_up_keeps_to_the_allowed_chunks(products):
    hits = follow_up_search(
        "How long is the warranty?",
        earlier="Tell me about the Skylark V7.",
        bm25=products,
        vectors=None,
        k=4,
        allowed={20, 22},
    )
    assert hits and {chunk_id for chunk_id, _ in hits} <= {20, 22}


def test_without_an_earlier_turn_it_is_the_plain_search(products):
    question = "How long is the warranty?"
    plain = hybrid_search(question, bm25=products, vectors=None, k=3, allowed=None)
    assert (
        follow_up_search(question, earlier=" ", bm25=products, vectors=None, k=3, allowed=None)
        == plain
    )
