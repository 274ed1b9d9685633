"""Cutting loaded pages into the chunks that are indexed and shown as passages.

Chunks are small enough that several fit in a prompt beside the question, and
overlap a little so a sentence cut at a boundary is still whole in one of them.
Markdown is cut at its headings first, so a chunk knows its section.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from langchain_core.documents import Document
from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

# Markdown heading levels, as (marker, metadata key) in the order they nest.
HEADING_LEVELS = [("#" * level, f"h{level}") for level in range(1, 7)]
HEADING_JOIN = " > "


@dataclass(frozen=True)
class SplitKnobs:
    """Chunk size and overlap, in characters."""

    chunk_chars: int = 800
    overlap_chars: int = 120


def split_pages(
    pages: list[Document], *, kind: str, knobs: SplitKnobs = SplitKnobs()
) -> list[Document]:
    """Chunks of ``pages`` in document order, none longer than ``knobs.chunk_chars``.

    Each keeps its page's ``page`` and gets ``heading`` ("Install > Power" for
    Markdown, "" otherwise) and ``ordinal`` (0, 1, ... across the document).
    """
    sections = _markdown_sections(pages) if kind == "markdown" else pages
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=knobs.chunk_chars, chunk_overlap=knobs.overlap_chars, add_start_index=True
    )
    chunks = [chunk for chunk in splitter.split_documents(sections) if chunk.page_content.strip()]
    for ordinal, chunk in enumerate(chunks):
        chunk.metadata.setdefault("heading", "")
        chunk.metadata["ordinal"] = ordinal
    return chunks


def _markdown_sections(pages: list[Document]) -> list[Document]:
    """Each page cut at its headings; a section's headings go in its metadata.

    Heading lines stay in the text too: a question often uses the section's
    words ("resetting the router") rather than the body's.
    """
    splitter = MarkdownHeaderTextSplitter(HEADING_LEVELS, strip_headers=False)
    sections = []
    for page in pages:
        for section in splitter.split_text(page.page_content):
            headings = [
                section.metadata[key] for _, key in HEADING_LEVELS if key in section.metadata
            ]
            section.metadata = {
                **page.metadata,
                **section.metadata,
                "heading": HEADING_JOIN.join(headings),
            }
            sections.append(section)
    return sections


def searchable_text(text: str, *, filename: str, heading: str = "") -> str:
    """What a chunk is indexed under: its text after its file's name and its heading.

    A chunk deep in a manual seldom names the product ("Charger: TC-36"); the
    file name ("trelvo-e-city-3.pdf") and the section do, so a question naming
    them finds it. Only the index sees this; the passage shown is the text.
    """
    title = Path(filename).stem.replace("-", " ").replace("_", " ")
    return "\n".join(part for part in (title, heading, text) if part)
