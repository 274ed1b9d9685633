"""Bm25Index: keyword search over chunk ids, filtered to a user's own chunks."""

from __future__ import annotations

import pytest

from llm.retrieval.bm25 import Bm25Index

# Alice owns chunks 1-3, Bob owns 10-11.
ALICE = {1, 2, 3}
TEXTS = {
    1: "To reset the router, hold the button for ten seconds.",
    2: "Error E47 means the Zigbee radio lost its pairing.",
    3: "The warranty covers two years of normal use.",
    10: "Bob's router notes: reset it by unplugging the power.",
    11: "Bob's garden: the tomatoes need watering twice a week.",
}


@pytest.fixture
def index() -> Bm25Index:
    return Bm25Index.build(ids=list(TEXTS), texts=list(TEXTS.values()))


def test_it_finds_the_passage_with_the_rare_term(index):
    """A code that appears once ranks its chunk first, whatever else the query says."""
    hits = index.search("what does error E47 mean?", k=3)
    assert hits[0][0] == 2
    assert all(score > 0 for _, score in hits)


def test_it_matches_word_forms_through_stemming(index):
    """ "resetting routers" finds "reset the router"."""
    assert {chunk_id for chunk_id, _ in index.search("resetting routers", k=5)} == {1, 10}


def test_it_returns_only_the_owners_chunks(index):
    """With allowed=Alice's ids, Bob's matching chunk never comes back."""
    hits = index.search("reset router", k=5, allowed=ALICE)
    assert [chunk_id for chunk_id, _ in hits] == [1]


def test_it_returns_nothing_when_no_allowed_chunk_matches(index):
    """An owner with no matching chunk gets nothing, not someone else's."""
    assert index.search("tomatoes", k=5, allowed=ALICE) == []
    assert index.search("router", k=5, allowed=set()) == []


def test_it_ranks_best_first_and_honours_k(index):
    """Scores fall down the list and at most k come back."""
    hits = index.search("router reset button power", k=1)
    assert len(hits) == 1
    scores = [score for _, score in index.search("router reset button power", k=5)]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("query", ["quantum chromodynamics", "the and of", ""])
def test_it_returns_nothing_for_a_query_without_known_terms(index, query):
    """Unknown words or stopwords alone match nothing: no zero-score filler."""
    assert index.search(query, k=5) == []


def test_it_survives_a_save_and_load(index, tmp_path):
    """A loaded index gives the same hits and scores as the one saved."""
    index.save(tmp_path / "bm25")
    loaded = Bm25Index.load(tmp_path / "bm25")
    assert loaded.search("E47 Zigbee", k=3) == index.search("E47 Zigbee", k=3)
    assert loaded.search("reset", k=5, allowed=ALICE) == index.search("reset", k=5, allowed=ALICE)
    assert len(loaded) == len(TEXTS)


def test_it_replaces_an_older_index_on_save(index, tmp_path):
    """Saving over an index leaves only the new one."""
    Bm25Index.build(ids=[99], texts=["an old chunk about kettles"]).save(tmp_path / "bm25")
    index.save(tmp_path / "bm25")
    loaded = Bm25Index.load(tmp_path / "bm25")
    assert loaded.search("kettles", k=5) == []
    assert loaded.search("E47", k=5)[0][0] == 2


def test_it_builds_saves_and_searches_an_empty_index(tmp_path):
    """No chunks at all (a new user) is an index that finds nothing."""
    empty = Bm25Index.build(ids=[], texts=[])
    assert empty.search("router", k=5) == []
    empty.save(tmp_path / "bm25")
    assert Bm25Index.load(tmp_path / "bm25").search("router", k=5, allowed={1}) == []


def test_it_indexes_chunks_that_are_only_stopwords(tmp_path):
    """Chunks with no terms left after stopwords build fine and match nothing."""
    index = Bm25Index.build(ids=[1, 2], texts=["the and of", "to be or not to be"])
    assert index.search("be", k=5) == []
    index.save(tmp_path / "bm25")
    assert len(Bm25Index.load(tmp_path / "bm25")) == 2


def test_it_refuses_ids_and_texts_of_different_lengths():
    """A mismatch would attach hits to the wrong chunks; it fails loudly instead."""
    with pytest.raises(ValueError):
        Bm25Index.build(ids=[1, 2], texts=["only one"])
