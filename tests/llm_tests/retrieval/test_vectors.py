"""VectorIndex and embeddings_for: a real sentence-transformers folder through LangChain's FAISS."""

from __future__ import annotations

import math

import pytest

from llm.retrieval.vectors import VectorIndex, embed_texts, embeddings_for

# Alice owns chunks 1-3, Bob owns 10-11.
ALICE = {1, 2, 3}
TEXTS = {
    1: "To reset the router, hold the button for ten seconds.",
    2: "Error E47 means the Zigbee radio lost its pairing.",
    3: "The warranty covers two years of normal use.",
    10: "Bob's router notes: reset it by unplugging the power.",
    11: "Bob's garden: the tomatoes need watering twice a week.",
}


@pytest.fixture(scope="module")
def vectors(tiny_embeddings) -> list[list[float]]:
    return embed_texts(tiny_embeddings, list(TEXTS.values()), batch_size=2)


@pytest.fixture(scope="module")
def index(tiny_embeddings, vectors) -> VectorIndex:
    return VectorIndex.build(
        ids=list(TEXTS), texts=list(TEXTS.values()), vectors=vectors, embeddings=tiny_embeddings
    )


def test_it_loads_a_local_model_once(tiny_embedding_dir):
    """The same folder gives the same Embeddings object: the model loads once per process."""
    assert embeddings_for(str(tiny_embedding_dir)) is embeddings_for(str(tiny_embedding_dir))


def test_it_embeds_normalised_vectors_in_batches(tiny_embeddings, vectors):
    """Batched or not, each text gets the same unit-length vector."""
    assert len(vectors) == len(TEXTS)
    assert all(math.isclose(sum(x * x for x in vector), 1.0, rel_tol=1e-4) for vector in vectors)
    one_by_one = [tiny_embeddings.embed_query(text) for text in TEXTS.values()]
    assert vectors[0] == pytest.approx(one_by_one[0], abs=1e-5)
    assert vectors[-1] == pytest.approx(one_by_one[-1], abs=1e-5)


def test_it_puts_a_chunk_first_for_its_own_text(index):
    """A query identical to a chunk has cosine similarity 1 with it."""
    [(chunk_id, score)] = index.search(TEXTS[3], k=1)
    assert chunk_id == 3
    assert score == pytest.approx(1.0, abs=1e-4)


def test_it_ranks_most_similar_first(index):
    """Every chunk comes back for a big enough k, similarities falling."""
    hits = index.search("router", k=10)
    assert {chunk_id for chunk_id, _ in hits} == set(TEXTS)
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)


def test_it_returns_only_the_owners_chunks(index):
    """With allowed=Alice's ids, even Bob's identical text is not returned."""
    hits = index.search(TEXTS[10], k=5, allowed=ALICE)
    assert {chunk_id for chunk_id, _ in hits} == ALICE


def test_it_finds_an_allowed_chunk_ranked_last_overall(index):
    """A filter that keeps one chunk finds it wherever it ranks among everyone's."""
    last_id, last_score = index.search(TEXTS[1], k=10)[-1]
    hits = index.search(TEXTS[1], k=1, allowed=[last_id])
    assert hits == [(last_id, pytest.approx(last_score))]


def test_it_returns_nothing_when_nothing_is_allowed(index):
    """An owner with no chunks gets nothing, not everyone else's."""
    assert index.search(TEXTS[1], k=5, allowed=set()) == []


def test_it_survives_a_save_and_load(index, tiny_embeddings, tmp_path):
    """A loaded index ranks by inner product as the saved one did."""
    index.save(tmp_path / "vectors")
    loaded = VectorIndex.load(tmp_path / "vectors", embeddings=tiny_embeddings)
    assert len(loaded) == len(TEXTS)
    assert loaded.search(TEXTS[2], k=3) == index.search(TEXTS[2], k=3)
    assert loaded.search(TEXTS[2], k=1)[0][0] == 2


def test_it_builds_saves_and_searches_an_empty_index(tiny_embeddings, tmp_path):
    """No chunks at all is an index that finds nothing, before and after saving."""
    empty = VectorIndex.build(ids=[], texts=[], vectors=[], embeddings=tiny_embeddings)
    assert empty.search("router", k=5) == []
    empty.save(tmp_path / "vectors")
    loaded = VectorIndex.load(tmp_path / "vectors", embeddings=tiny_embeddings)
    assert loaded.search("router", k=5, allowed={1}) == []
    assert len(loaded) == 0


def test_it_refuses_mismatched_inputs(tiny_embeddings):
    """Ids, texts and vectors must line up, or hits would name the wrong chunks."""
    with pytest.raises(ValueError):
        VectorIndex.build(ids=[1, 2], texts=["a"], vectors=[[1.0]], embeddings=tiny_embeddings)
