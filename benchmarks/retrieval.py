"""Grounded answers: retriever recall, answers with and without passages, speed.

Ten invented manuals (benchmarks/retrieval_corpus.py, written at run time as
txt, md, html and pdf) go through the app's ingestion (load_pages, then
split_pages with the app's chunk size and overlap), look-alike filler manuals
grow the BM25 index to 10,000 chunks, and each question is answered by the
real SmolLM2 the way the chat chain does it: BM25 top DOCUMENTS_TOP_K of the
manuals, fit_passages, grounded_prompt, a ChatPromptTemplate (system, history,
human) and EngineChatModel over a LocalEngine, greedy, all questions sent at
once so the engine batches them. The baseline is the same question with the
same system prompt and no passages, in the same run. Follow-ups are searched
over all 10,000 chunks, where look-alike products compete: each question with
its product replaced by "it" after "Tell me about the <product>.", alone and
with that earlier turn; and each question after one on another product.

Prints the figures one per line and ends with ``rag_fact_rate: <share of
answers holding the fact, with retrieval>``. ``--answers FILE`` writes every
question, prompt and answer as JSON lines, to read what the model wrote.
Usage: python benchmarks/retrieval.py [--tokens 64] [--answers answers.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import percentile  # noqa: E402
from benchmarks.retrieval_corpus import (  # noqa: E402
    QUESTIONS,
    Question,
    filler_documents,
    follow_up,
    write_manuals,
)
from llm.retrieval.bm25 import Bm25Index  # noqa: E402
from llm.retrieval.loaders import detect_kind, load_pages  # noqa: E402
from llm.retrieval.passages import Passage  # noqa: E402
from llm.retrieval.search import follow_up_search  # noqa: E402
from llm.retrieval.splitting import SplitKnobs, searchable_text, split_pages  # noqa: E402

INDEX_CHUNKS = 10_000
SEARCH_REPEATS = 5


@dataclass(frozen=True)
class Chunk:
    chunk_id: int
    document_id: int
    filename: str
    text: str
    page: int | None
    heading: str


@dataclass
class Corpus:
    chunks: list[Chunk]
    manual_ids: list[int]  # the chunks of the ten manuals: the user's documents
    pages: int
    manual_pages: int
    manual_seconds: float
    seconds: float  # loading and splitting every page, and building the index once
    bm25: Bm25Index


def app_settings():
    """The app's settings (defaults unless the environment says otherwise), no database."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from django.conf import settings

    return settings


def ingest(
    path: Path, *, document_id: int, first_id: int, knobs: SplitKnobs
) -> tuple[int, list[Chunk]]:
    """One file through the app's ingestion: its page count and its chunks."""
    with path.open("rb") as file:
        kind = detect_kind(filename=path.name, declared_type="", head=file.read(1024))
    pages = load_pages(path, kind=kind, filename=path.name)
    pieces = split_pages(pages, kind=kind, knobs=knobs)
    chunks = [
        Chunk(
            chunk_id=first_id + index,
            document_id=document_id,
            filename=path.name,
            text=piece.page_content,
            page=piece.metadata.get("page"),
            heading=piece.metadata.get("heading", ""),
        )
        for index, piece in enumerate(pieces)
    ]
    return len(pages), chunks


def build_corpus(folder: Path, knobs: SplitKnobs) -> Corpus:
    """The manuals, then filler files until the index holds ``INDEX_CHUNKS`` chunks.

    Timed: loading and splitting each file, and building the index once (the
    app rebuilds an owner's index after each upload; one build is the floor).
    """
    manuals = write_manuals(folder)
    fillers = _write_fillers(folder / "filler", count=INDEX_CHUNKS // 7)
    chunks: list[Chunk] = []
    start = time.perf_counter()
    pages = _ingest_all(manuals, chunks, knobs)
    manual_pages, manual_seconds = pages, time.perf_counter() - start
    manual_ids = [chunk.chunk_id for chunk in chunks]
    pages += _ingest_all(fillers, chunks, knobs)
    chunks = chunks[:INDEX_CHUNKS]
    texts = [searchable_text(c.text, filename=c.filename, heading=c.heading) for c in chunks]
    bm25 = Bm25Index.build(ids=[c.chunk_id for c in chunks], texts=texts)
    seconds = time.perf_counter() - start
    return Corpus(chunks, manual_ids, pages, manual_pages, manual_seconds, seconds, bm25)


def _ingest_all(paths: list[Path], chunks: list[Chunk], knobs: SplitKnobs) -> int:
    """Ingest ``paths`` into ``chunks`` until it holds ``INDEX_CHUNKS``; the pages read."""
    pages = 0
    for path in paths:
        if len(chunks) >= INDEX_CHUNKS:
            break
        document_id = 1 + (chunks[-1].document_id if chunks else 0)
        count, found = ingest(path, document_id=document_id, first_id=len(chunks) + 1, knobs=knobs)
        chunks += found
        pages += count
    return pages


def _write_fillers(folder: Path, *, count: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for (filename, text), _ in zip(filler_documents(), range(count), strict=False):
        path = folder / filename
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def holds_answer(text: str, question: Question) -> bool:
    """Whether ``text`` holds one of the answer's spellings as a whole token.

    "23" does not count inside "230" or "2023", nor "4.7" inside "4.75".
    """
    return any(
        re.search(rf"(?<![0-9a-z]){re.escape(answer.lower())}(?![0-9a-z])", text.lower())
        for answer in question.answers
    )


def search(
    corpus: Corpus, text: str, *, k: int, allowed, earlier: str = ""
) -> list[tuple[int, float]]:
    # As the app searches: BM25 alone when no embedding model is configured (the
    # default), with the user's previous message when there is one.
    return follow_up_search(
        text, earlier=earlier, bm25=corpus.bm25, vectors=None, k=k, allowed=allowed
    )


def asked_alone(question: Question) -> tuple[str, str]:
    return "", question.text


def follow_up_alone(question: Question) -> tuple[str, str]:
    return "", follow_up(question)[1]


def after_another_subject(question: Question) -> tuple[str, str]:
    """The question, after one on the next manual's product."""
    other = next(q for q in QUESTIONS if q.filename == _next_manual(question.filename))
    return other.text, question.text


def _next_manual(filename: str) -> str:
    manuals = list(dict.fromkeys(q.filename for q in QUESTIONS))
    return manuals[(manuals.index(filename) + 1) % len(manuals)]


def recall(corpus: Corpus, *, k: int, allowed, turns=asked_alone) -> float:
    """Share of questions with a chunk of the right manual holding the answer in the
    top ``k``; ``turns(question)`` is (the user's previous message, the one searched)."""
    by_id = {chunk.chunk_id: chunk for chunk in corpus.chunks}
    found = 0
    for question in QUESTIONS:
        earlier, text = turns(question)
        hits = search(corpus, text, k=k, allowed=allowed, earlier=earlier)
        hits = [by_id[chunk_id] for chunk_id, _ in hits]
        found += any(
            hit.filename == question.filename and holds_answer(hit.text, question) for hit in hits
        )
    return found / len(QUESTIONS)


def search_milliseconds(corpus: Corpus, *, k: int, allowed) -> list[float]:
    timings = []
    for _ in range(SEARCH_REPEATS):
        for question in QUESTIONS:
            start = time.perf_counter()
            search(corpus, question.text, k=k, allowed=allowed)
            timings.append((time.perf_counter() - start) * 1000)
    return timings


def passages_for(corpus: Corpus, question: Question, *, k: int) -> list:
    """The top ``k`` passages of the manuals, as the chain gets them."""
    by_id = {chunk.chunk_id: chunk for chunk in corpus.chunks}
    hits = search(corpus, question.text, k=k, allowed=corpus.manual_ids)
    return [
        Passage(
            chunk_id=chunk_id,
            document_id=by_id[chunk_id].document_id,
            filename=by_id[chunk_id].filename,
            text=by_id[chunk_id].text,
            page=by_id[chunk_id].page,
            heading=by_id[chunk_id].heading,
            score=score,
        )
        for chunk_id, score in hits
    ]


def chain_inputs(question: Question, passages: list, *, settings, loaded, tokens: int) -> dict:
    """``{"system_prompt", "history", "input"}`` as the chat chain's grounding step builds them."""
    from llm.retrieval.grounding import ground

    prompt = ground(
        system_prompt=settings.CHAT_DEFAULT_SYSTEM_PROMPT,
        question=question.text,
        history=[],
        passages=passages,
        context_window=loaded.context_window,
        max_new_tokens=tokens,
        share=settings.DOCUMENTS_CONTEXT_SHARE,
        count_tokens=lambda text: len(loaded.tokenizer.encode(text, add_special_tokens=False)),
    )
    return {"system_prompt": prompt.system_prompt, "history": [], "input": prompt.input}


async def answer_all(engine, inputs: list[dict], *, tokens: int) -> list[str]:
    """Every prompt answered at once (the engine batches them), greedy."""
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

    from llm.chat_model import EngineChatModel

    template = ChatPromptTemplate.from_messages(
        [("system", "{system_prompt}"), MessagesPlaceholder("history"), ("human", "{input}")]
    )
    chain = template | EngineChatModel(engine=engine, temperature=0.0, max_new_tokens=tokens)
    replies = await asyncio.gather(*(chain.ainvoke(values) for values in inputs))
    return [reply.content for reply in replies]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--answers", type=Path, help="write questions, prompts, answers here")
    args = parser.parse_args()
    settings = app_settings()
    from llm.engine.local import LocalEngine
    from llm.loading import load_model, prepare_embedded_model

    knobs = SplitKnobs(settings.DOCUMENTS_CHUNK_CHARS, settings.DOCUMENTS_CHUNK_OVERLAP)
    top_k = settings.DOCUMENTS_TOP_K
    with tempfile.TemporaryDirectory(prefix="loopchat-retrieval-") as folder:
        corpus = build_corpus(Path(folder), knobs)
    print(f"questions: {len(QUESTIONS)}")
    print(f"manual_chunks: {len(corpus.manual_ids)}")
    print(f"index_chunks: {len(corpus.chunks)}")
    print(f"manual_pages_per_s: {corpus.manual_pages / corpus.manual_seconds:.1f}")
    print(f"ingest_pages_per_s: {corpus.pages / corpus.seconds:.1f}")
    print(f"recall_at_{top_k}: {recall(corpus, k=top_k, allowed=corpus.manual_ids):.3f}")
    print(f"recall_at_{top_k}_all_chunks: {recall(corpus, k=top_k, allowed=None):.3f}")
    for name, turns in [
        ("follow_up_recall_at_{}_question_alone", follow_up_alone),
        ("follow_up_recall_at_{}", follow_up),
        ("new_subject_recall_at_{}", after_another_subject),
    ]:
        print(f"{name.format(top_k)}: {recall(corpus, k=top_k, allowed=None, turns=turns):.3f}")
    timings = search_milliseconds(corpus, k=top_k, allowed=corpus.manual_ids)
    print(f"retrieval_p50_ms: {percentile(timings, 0.5):.2f}")
    print(f"retrieval_p95_ms: {percentile(timings, 0.95):.2f}")
    unfiltered = search_milliseconds(corpus, k=top_k, allowed=None)
    print(f"retrieval_p95_ms_all_chunks: {percentile(unfiltered, 0.95):.2f}")

    prepare_embedded_model(settings.MODEL_CACHE_DIR)
    loaded = load_model(settings.CHAT_MODEL, settings.MODEL_CACHE_DIR, "cpu")
    engine = LocalEngine(lambda: loaded, max_batch_size=settings.ENGINE_MAX_BATCH_SIZE)
    found = [passages_for(corpus, question, k=top_k) for question in QUESTIONS]
    shared = {"settings": settings, "loaded": loaded, "tokens": args.tokens}
    grounded = [chain_inputs(q, p, **shared) for q, p in zip(QUESTIONS, found, strict=True)]
    bare = [chain_inputs(q, [], **shared) for q in QUESTIONS]
    start = time.perf_counter()
    replies = asyncio.run(answer_all(engine, grounded + bare, tokens=args.tokens))
    seconds = time.perf_counter() - start
    engine.close()
    with_passages, without = replies[: len(QUESTIONS)], replies[len(QUESTIONS) :]
    if args.answers:
        _write_answers(args.answers, grounded, with_passages, without)
    rag = sum(map(holds_answer, with_passages, QUESTIONS)) / len(QUESTIONS)
    base = sum(map(holds_answer, without, QUESTIONS)) / len(QUESTIONS)
    prompt_tokens = [len(loaded.tokenizer.encode(values["input"])) for values in grounded]
    print(f"grounded_prompt_tokens_mean: {sum(prompt_tokens) / len(prompt_tokens):.0f}")
    print(f"generation_seconds: {seconds:.1f}")
    print(f"no_retrieval_fact_rate: {base:.3f}")
    print(f"rag_fact_rate: {rag:.3f}")


def _write_answers(path: Path, grounded: list[dict], with_passages, without) -> None:
    with path.open("w", encoding="utf-8") as file:
        for question, values, rag, bare in zip(
            QUESTIONS, grounded, with_passages, without, strict=True
        ):
            row = {
                "question": question.text,
                "answers": question.answers,
                "rag_ok": holds_answer(rag, question),
                "rag": rag,
                "bare_ok": holds_answer(bare, question),
                "bare": bare,
                "system_prompt": values["system_prompt"],
                "input": values["input"],
            }
            file.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
