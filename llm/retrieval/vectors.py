"""Meaning search over chunks: sentence-transformers vectors in LangChain's FAISS store.

Vectors are normalised, so FAISS's inner product is cosine similarity. Chunks
are embedded once, when their document is ingested (:func:`embed_texts`), and
the index is built from those vectors without embedding anything again.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Collection
from pathlib import Path

import faiss
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_huggingface import HuggingFaceEmbeddings

from llm.retrieval.storage import replace_directory

# See loaders.py: langchain-community's sunset warning, once per process, says nothing to us.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

MANIFEST_FILE = "manifest.json"
FAISS_FOLDER = "faiss"
# A filtered search ranks this many times more vectors than it needs, then
# this many times more again until enough of them pass the filter.
FETCH_GROWTH = 4


@functools.cache
def embeddings_for(model_path: str) -> Embeddings:
    """The embedding model at ``model_path`` (a sentence-transformers folder), loaded once.

    Never downloads: a hub id works only where it is already in the local cache.
    """
    return HuggingFaceEmbeddings(
        model_name=model_path,
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True},
    )


def embed_texts(
    embeddings: Embeddings, texts: list[str], *, batch_size: int = 32
) -> list[list[float]]:
    """One vector per text, embedded ``batch_size`` at a time to bound memory."""
    vectors: list[list[float]] = []
    for start in range(0, len(texts), batch_size):
        vectors.extend(embeddings.embed_documents(texts[start : start + batch_size]))
    return vectors


class VectorIndex:
    """A FAISS store whose documents carry their chunk id; ``None`` inside when empty.

    FAISS cannot be built from no vectors, and a user with no documents is normal.
    """

    def __init__(self, *, store: FAISS | None) -> None:
        self._store = store

    @classmethod
    def build(
        cls,
        *,
        ids: list[int],
        texts: list[str],
        vectors: list[list[float]],
        embeddings: Embeddings,
    ) -> VectorIndex:
        """An index of chunks from their precomputed (normalised) ``vectors``.

        ``embeddings`` embeds the questions; it must be the model that made ``vectors``.
        """
        if not len(ids) == len(texts) == len(vectors):
            raise ValueError(f"{len(ids)} ids, {len(texts)} texts, {len(vectors)} vectors")
        if not ids:
            return cls(store=None)
        store = FAISS.from_embeddings(
            list(zip(texts, vectors, strict=True)),
            embeddings,
            metadatas=[{"chunk_id": chunk_id} for chunk_id in ids],
            ids=[str(chunk_id) for chunk_id in ids],
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        return cls(store=store)

    def save(self, directory: Path) -> None:
        """Write the index to ``directory``, replacing what was there in one step."""

        def write(folder: Path) -> None:
            (folder / MANIFEST_FILE).write_text(json.dumps({"count": len(self)}))
            if self._store is not None:
                self._store.save_local(str(folder / FAISS_FOLDER))

        replace_directory(directory, write)

    @classmethod
    def load(cls, directory: Path, *, embeddings: Embeddings) -> VectorIndex:
        """The index :meth:`save` wrote to ``directory``, asking ``embeddings`` for queries."""
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        if not manifest["count"]:
            return cls(store=None)
        # The pickle is the docstore this module wrote itself, never an uploaded file.
        # FAISS does not save its distance strategy: it must be given again.
        store = FAISS.load_local(
            str(directory / FAISS_FOLDER),
            embeddings,
            allow_dangerous_deserialization=True,
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        return cls(store=store)

    def __len__(self) -> int:
        return 0 if self._store is None else self._store.index.ntotal

    def search(
        self, query: str, *, k: int, allowed: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        """Up to ``k`` (chunk id, cosine similarity) pairs, most similar first.

        With ``allowed``, only those chunk ids can come back. FAISS filters
        after it ranks, so the ranked list grows until it holds ``k`` allowed
        chunks or every chunk: a user's few chunks may sit anywhere among everyone's.
        """
        if self._store is None or k <= 0 or (allowed is not None and not allowed):
            return []
        _one_search_thread()
        vector = self._store.embedding_function.embed_query(query)
        if allowed is None:
            return _pairs(self._store.similarity_search_with_score_by_vector(vector, k=k))
        return _pairs(self._search_allowed(vector, k=k, allowed=set(allowed)))

    def _search_allowed(
        self, vector: list[float], *, k: int, allowed: set[int]
    ) -> list[tuple[Document, float]]:
        """The top ``k`` allowed hits: exact, since the ranked list is cut only once it holds k."""
        fetch_k = min(len(self), k * FETCH_GROWTH)
        while True:
            found = self._store.similarity_search_with_score_by_vector(
                vector,
                k=k,
                filter=lambda metadata: metadata["chunk_id"] in allowed,
                fetch_k=fetch_k,
            )
            if len(found) >= k or fetch_k >= len(self):
                return found
            fetch_k = min(len(self), fetch_k * FETCH_GROWTH)


def _pairs(found: list[tuple[Document, float]]) -> list[tuple[int, float]]:
    return [(int(document.metadata["chunk_id"]), float(score)) for document, score in found]


def _one_search_thread() -> None:
    """Search one query on this thread alone (OpenMP's setting is per calling thread).

    Ranking one query against ~10,000 vectors takes 0.3 ms on one core; on a
    busy 2-core machine, two OpenMP threads waiting on each other took 9 ms.
    """
    faiss.omp_set_num_threads(1)
