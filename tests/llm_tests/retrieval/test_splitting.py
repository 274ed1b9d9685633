"""split_pages: chunks that fit, in order, knowing their page and section."""

from __future__ import annotations

from langchain_core.documents import Document

from llm.retrieval.splitting import SplitKnobs, searchable_text, split_pages

SMALL = SplitKnobs(chunk_chars=200, overlap_chars=40)


def sentences(topic: str, count: int) -> str:
    return " ".join(f"Sentence {number} is about the {topic}." for number in range(count))


def page(text: str, number: int | None = None) -> Document:
    return Document(page_content=text, metadata={"page": number, "title": ""})


def test_it_keeps_chunks_within_the_size_and_pages_apart():
    """Long pages become chunks no longer than chunk_chars, each tagged with its page."""
    pages = [page(sentences("router", 30), 1), page(sentences("modem", 30), 3)]
    chunks = split_pages(pages, kind="pdf", knobs=SMALL)
    assert len(chunks) > 4
    assert all(len(chunk.page_content) <= SMALL.chunk_chars for chunk in chunks)
    assert {chunk.metadata["page"] for chunk in chunks if "router" in chunk.page_content} == {1}
    assert {chunk.metadata["page"] for chunk in chunks if "modem" in chunk.page_content} == {3}


def test_it_numbers_chunks_in_document_order():
    """ordinal runs 0, 1, 2, ... across pages; heading is empty outside Markdown."""
    pages = [page(sentences("router", 20), 1), page(sentences("modem", 20), 2)]
    chunks = split_pages(pages, kind="pdf", knobs=SMALL)
    assert [chunk.metadata["ordinal"] for chunk in chunks] == list(range(len(chunks)))
    assert [chunk.metadata["page"] for chunk in chunks] == sorted(
        chunk.metadata["page"] for chunk in chunks
    )
    assert {chunk.metadata["heading"] for chunk in chunks} == {""}


def test_it_overlaps_neighbouring_chunks():
    """The end of one chunk starts the next, so a cut sentence is whole somewhere."""
    chunks = split_pages([page(sentences("router", 30))], kind="text", knobs=SMALL)
    first, second = chunks[0].page_content, chunks[1].page_content
    assert first[-20:] in second


def test_it_gives_markdown_chunks_their_heading_path():
    """Each Markdown section's chunks carry "Install > Power"; heading lines stay in the text."""
    text = (
        "Intro before any heading.\n\n# Install\n\nUnpack the box.\n\n"
        "## Power\n\n" + sentences("adapter", 12) + "\n\n# Use\n\nPress start."
    )
    chunks = split_pages([page(text)], kind="markdown", knobs=SMALL)
    headings = [chunk.metadata["heading"] for chunk in chunks]
    assert headings[0] == ""
    assert "Install" in headings and "Use" in headings
    power = [chunk for chunk in chunks if chunk.metadata["heading"] == "Install > Power"]
    assert len(power) > 1
    assert power[0].page_content.startswith("## Power")
    assert power[0].metadata["h1"] == "Install" and power[0].metadata["h2"] == "Power"
    assert all(len(chunk.page_content) <= SMALL.chunk_chars for chunk in chunks)
    assert [chunk.metadata["ordinal"] for chunk in chunks] == list(range(len(chunks)))


def test_it_drops_whitespace_only_chunks():
    """Blank stretches never become chunks."""
    chunks = split_pages([page("Real text."), page("   \n\n  ")], kind="text", knobs=SMALL)
    assert [chunk.page_content for chunk in chunks] == ["Real text."]


def test_it_uses_the_default_knobs():
    """By default a chunk is at most 800 characters."""
    chunks = split_pages([page(sentences("router", 100))], kind="text")
    assert max(len(chunk.page_content) for chunk in chunks) <= SplitKnobs().chunk_chars
    assert len(chunks) > 3


def test_a_chunk_is_indexed_under_its_file_name_and_heading():
    indexed = searchable_text("Charger: TC-36.", filename="trelvo-e-city_3.pdf", heading="Box")
    assert indexed == "trelvo e city 3\nBox\nCharger: TC-36."
    assert searchable_text("Text.", filename="notes.txt") == "notes\nText."
