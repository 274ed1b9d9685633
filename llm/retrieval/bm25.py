"""Keyword search over chunks with BM25 (bm25s): exact names, codes and rare words.

Vectors find paraphrases; BM25 finds "E47" and "Zigbee" when a small embedding
model blurs them. Texts are lower-cased, stemmed (English Snowball) and
stripped of English stopwords, the same way for chunks and for questions.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from llm.retrieval.storage import replace_directory

IDS_FILE = "ids.json"
BM25_FOLDER = "bm25s"


class Bm25Index:
    """A BM25 index whose rows are chunk ids.

    bm25s cannot index a corpus without a single term, and a user with no
    documents is normal: such an index keeps no retriever and finds nothing.
    """

    def __init__(self, *, ids: list[int], retriever: bm25s.BM25 | None) -> None:
        self._ids = np.asarray(ids, dtype=np.int64)
        self._retriever = retriever

    @classmethod
    def build(cls, *, ids: list[int], texts: list[str]) -> Bm25Index:
        """An index of ``texts``, each found again by the id at the same place in ``ids``."""
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        tokens = terms(texts)
        if not any(tokens):
            return cls(ids=ids, retriever=None)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(ids=ids, retriever=retriever)

    def save(self, directory: Path) -> None:
        """Write the index to ``directory``, replacing what was there in one step."""

        def write(folder: Path) -> None:
            (folder / IDS_FILE).write_text(json.dumps(self._ids.tolist()))
            if self._retriever is not None:
                self._retriever.save(str(folder / BM25_FOLDER), show_progress=False)

        replace_directory(directory, write)

    @classmethod
    def load(cls, directory: Path) -> Bm25Index:
        """The index :meth:`save` wrote to ``directory``."""
        ids = json.loads((directory / IDS_FILE).read_text())
        folder = directory / BM25_FOLDER
        retriever = bm25s.BM25.load(str(folder), show_progress=False) if folder.exists() else None
        return cls(ids=ids, retriever=retriever)

    def __len__(self) -> int:
        return len(self._ids)

    def search(
        self, query: str, *, k: int, allowed: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        """Up to ``k`` (chunk id, score) pairs, best first, that share a term with ``query``.

        With ``allowed``, only those chunk ids can come back (a user's own
        documents); scores are BM25's and mean nothing across indexes.
        """
        if self._retriever is None or k <= 0:
            return []
        known = [term for term in terms([query])[0] if term in self._retriever.vocab_dict]
        if not known:
            return []
        results = self._retriever.retrieve(
            [known],
            k=min(k, len(self._ids)),
            weight_mask=None if allowed is None else self._mask(allowed),
            show_progress=False,
        )
        rows, scores = results.documents[0], results.scores[0]
        return [
            (int(self._ids[row]), float(score))
            for row, score in zip(rows, scores, strict=True)
            if score > 0
        ]

    def _mask(self, allowed: Collection[int]) -> np.ndarray:
        """1.0 for rows whose chunk id is in ``allowed``, 0.0 for the rest."""
        wanted = np.fromiter(allowed, dtype=np.int64, count=len(allowed))
        return np.isin(self._ids, wanted).astype(np.float32)


def terms(texts: list[str]) -> list[list[str]]:
    """Stemmed terms of each text, stopwords out; an empty list where none are left.

    The grounding prompt matches a question to lines of its passages with these too.
    """
    return bm25s.tokenize(
        texts,
        stopwords="en",
        stemmer=_stemmer().stemWords,
        return_ids=False,
        show_progress=False,
    )


def _stemmer() -> Stemmer.Stemmer:
    # A fresh one each time: PyStemmer objects are not safe to share across threads.
    return Stemmer.Stemmer("english")
