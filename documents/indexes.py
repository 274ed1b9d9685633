"""Each owner's search index on disk, and the copy each process keeps loaded.

The database is the source of truth (chunks, their vectors); an index version
is a folder ``owner-<id>/v<version>`` built from it by the indexing task and
never changed after. ``SearchIndex.version`` says which folder is current, so
a process reloads exactly when a new version is committed.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import QuerySet

from documents.models import Chunk, SearchIndex
from llm.retrieval.bm25 import Bm25Index
from llm.retrieval.splitting import searchable_text
from llm.retrieval.vectors import VectorIndex, embed_texts, embeddings_for

# Loaded indexes kept per process, least recently used dropped first.
_CACHE_SIZE = 64
_EMBED_BATCH = 32


@dataclass(frozen=True)
class Built:
    chunk_count: int
    embedding_model: str


@dataclass(frozen=True)
class OwnerIndex:
    version: int
    bm25: Bm25Index
    vectors: VectorIndex | None
    # chunk id -> document id, to keep a search to the documents in scope.
    chunk_documents: dict[int, int]


def embedding_model_name() -> str:
    return settings.DOCUMENTS_EMBEDDING_MODEL


def embed(texts: list[str], *, progress: Callable[[float], None]) -> list[bytes] | None:
    """float32 vectors of ``texts`` by the configured model, or None without one."""
    model = embedding_model_name()
    if not model:
        return None
    embeddings = embeddings_for(model)
    vectors: list[bytes] = []
    for start in range(0, len(texts), _EMBED_BATCH):
        batch = texts[start : start + _EMBED_BATCH]
        vectors += [_pack(vector) for vector in embed_texts(embeddings, batch)]
        progress(min(1.0, (start + len(batch)) / len(texts)))
    return vectors


def index_write(*, owner_id: int, version: int, chunks: QuerySet[Chunk]) -> Built:
    """Build and save version ``version`` of an owner's index from ``chunks``."""
    rows = list(
        chunks.values_list(
            "id",
            "document_id",
            "text",
            "embedding",
            "document__embedding_model",
            "document__filename",
            "heading",
        )
    )
    ids = [row[0] for row in rows]
    texts = [searchable_text(row[2], filename=row[5], heading=row[6]) for row in rows]
    folder = _folder(owner_id, version)
    folder.mkdir(parents=True, exist_ok=True)
    Bm25Index.build(ids=ids, texts=texts).save(folder / "bm25")
    model = embedding_model_name()
    if model:
        vectors = _vectors_for(rows, texts, model)
        VectorIndex.build(
            ids=ids, texts=texts, vectors=vectors, embeddings=embeddings_for(model)
        ).save(folder / "vectors")
    mapping = {str(chunk_id): document_id for chunk_id, document_id, *_ in rows}
    (folder / "chunks.json").write_text(json.dumps({"embedding_model": model, "chunks": mapping}))
    return Built(chunk_count=len(rows), embedding_model=model)


def prune(*, owner_id: int, keep_from: int | None) -> None:
    """Delete an owner's index versions older than ``keep_from`` (readers may hold the
    last); ``None`` deletes the owner's whole index folder."""
    root = _owner_folder(owner_id)
    if keep_from is None:
        shutil.rmtree(root, ignore_errors=True)
        return
    for folder in root.glob("v*") if root.exists() else []:
        if folder.name[1:].isdigit() and int(folder.name[1:]) < keep_from:
            shutil.rmtree(folder, ignore_errors=True)


def owner_index(owner_id: int) -> OwnerIndex | None:
    """The owner's current index, loaded once per version; None before their first document."""
    version = (
        SearchIndex.objects.filter(owner_id=owner_id).values_list("version", flat=True).first()
    )
    if not version:
        return None
    with _lock:
        cached = _loaded.get(owner_id)
        if cached is not None and cached.version == version:
            _loaded.move_to_end(owner_id)
            return cached
    loaded = _load(owner_id, version)
    with _lock:
        _loaded[owner_id] = loaded
        _loaded.move_to_end(owner_id)
        while len(_loaded) > _CACHE_SIZE:
            _loaded.popitem(last=False)
    return loaded


def _load(owner_id: int, version: int) -> OwnerIndex:
    folder = _folder(owner_id, version)
    manifest = json.loads((folder / "chunks.json").read_text())
    model = manifest["embedding_model"]
    # Vectors only help when queries are embedded by the model that made them.
    use_vectors = bool(model) and model == embedding_model_name()
    vectors = (
        VectorIndex.load(folder / "vectors", embeddings=embeddings_for(model))
        if use_vectors
        else None
    )
    return OwnerIndex(
        version=version,
        bm25=Bm25Index.load(folder / "bm25"),
        vectors=vectors,
        chunk_documents={int(key): value for key, value in manifest["chunks"].items()},
    )


def _vectors_for(rows: list[tuple], texts: list[str], model: str) -> list[list[float]]:
    """Stored vectors, embedding now (``texts``, as indexed) any chunk stored without
    one or by another model."""
    missing = [index for index, row in enumerate(rows) if row[3] is None or row[4] != model]
    fresh = (
        embed_texts(embeddings_for(model), [texts[index] for index in missing]) if missing else []
    )
    vectors = [None if row[3] is None else _unpack(row[3]) for row in rows]
    for index, vector in zip(missing, fresh, strict=True):
        vectors[index] = list(vector)
    return vectors


def _pack(vector: list[float]) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _unpack(data: bytes | memoryview) -> list[float]:
    return np.frombuffer(bytes(data), dtype=np.float32).tolist()


def _owner_folder(owner_id: int) -> Path:
    return settings.DOCUMENTS_DIR / "indexes" / f"owner-{owner_id}"


def _folder(owner_id: int, version: int) -> Path:
    return _owner_folder(owner_id) / f"v{version}"


_lock = threading.Lock()
_loaded: OrderedDict[int, OwnerIndex] = OrderedDict()
