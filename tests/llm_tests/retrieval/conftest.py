"""Fixtures for retrieval: real files of each format and a tiny embedding model."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from fpdf import FPDF
from langchain_core.embeddings import Embeddings
from pypdf import PdfWriter

from llm.retrieval.vectors import embeddings_for
from tests.support.embedding import build_tiny_embedding_model


@pytest.fixture(scope="module")
def tiny_embedding_dir(tiny_model_dir: Path, model_cache_dir: Path) -> Path:
    """A tiny random sentence-transformers model using the tiny model's tokenizer."""
    return build_tiny_embedding_model(model_cache_dir / "tiny-random-embedding", tiny_model_dir)


@pytest.fixture(scope="module")
def tiny_embeddings(tiny_embedding_dir: Path) -> Embeddings:
    return embeddings_for(str(tiny_embedding_dir))


def pdf_bytes(pages: list[str], *, title: str = "") -> bytes:
    """A real PDF with one page per string; an empty string makes a blank page."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def locked_pdf_bytes(pages: list[str], *, user_password: str) -> bytes:
    """``pages`` as a PDF encrypted with RC4-128 (pypdf does it without extra packages)."""
    writer = PdfWriter(clone_from=io.BytesIO(pdf_bytes(pages)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, bytes | str], Path]:
    """Writes a file named ``name`` under tmp_path and returns its path."""

    def write(name: str, content: bytes | str) -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    return write
