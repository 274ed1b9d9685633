"""detect_kind and load_pages: each accepted format read, each bad file refused by name."""

from __future__ import annotations

import pytest

from llm.retrieval.loaders import DocumentError, detect_kind, load_pages
from tests.llm_tests.retrieval.conftest import locked_pdf_bytes, pdf_bytes

HTML = """<!doctype html>
<html><head><title>Router manual</title><style>p { color: red }</style>
<script>var tracking = "pixel";</script></head>
<body>
  <nav><a href="/">Home</a><a href="/help">Help</a></nav>
  <main><h1>Resetting</h1>
    <p>Hold the <b>reset</b> button for ten seconds.</p><p>The light blinks amber.</p>
  </main>
</body></html>"""

MARKDOWN = "# Install\n\nUnpack the box.\n\n## Power\n\nPlug in the adapter.\n"


def refusal(**kwargs) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        detect_kind(**kwargs)
    return caught.value


def load_refusal(path, *, kind: str) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        load_pages(path, kind=kind, filename=path.name)
    return caught.value


@pytest.mark.parametrize(
    ("filename", "declared_type", "head", "kind"),
    [
        ("notes.txt", "text/plain", b"hello", "text"),
        ("notes.TEXT", "", b"hello", "text"),
        ("guide.md", "text/markdown", b"# Guide", "markdown"),
        ("guide.markdown", "text/plain; charset=utf-8", b"# Guide", "markdown"),
        ("page.htm", "text/html", b"<html>", "html"),
        ("manual.pdf", "application/pdf", b"%PDF-1.7\n", "pdf"),
        ("manual.pdf", "application/octet-stream", b"%PDF-1.4\n", "pdf"),
        ("README", "text/plain", b"hello", "text"),
    ],
)
def test_it_detects_each_accepted_kind(filename, declared_type, head, kind):
    """The extension decides; a declared type that agrees, or says nothing, is fine."""
    assert detect_kind(filename=filename, declared_type=declared_type, head=head) == kind


@pytest.mark.parametrize(
    ("filename", "declared_type", "head"),
    [
        ("report.docx", "application/vnd.openxmlformats", b"PK\x03\x04"),
        ("photo.png", "image/png", b"\x89PNG"),
        ("setup.exe", "", b"MZ"),
        ("noextension", "image/png", b"\x89PNG"),
    ],
)
def test_it_refuses_unsupported_types(filename, declared_type, head):
    """Other formats are refused with a message naming the file and what is accepted."""
    error = refusal(filename=filename, declared_type=declared_type, head=head)
    assert error.code == "unsupported_type"
    assert filename in error.message
    assert "PDF" in error.message and ".md" in error.message


def test_it_refuses_a_pdf_that_is_really_html():
    """A file named and sent as a PDF must start like one."""
    error = refusal(filename="invoice.pdf", declared_type="application/pdf", head=b"<html>")
    assert error.code == "mislabelled_type"
    assert "invoice.pdf" in error.message


def test_it_refuses_a_text_file_that_is_really_a_pdf():
    """A .txt holding a PDF is mislabelled, not read as garbage text."""
    error = refusal(filename="notes.txt", declared_type="text/plain", head=b"%PDF-1.7\n")
    assert error.code == "mislabelled_type"


def test_it_refuses_binary_content_named_as_markdown():
    """NUL bytes in the head mean binary, whatever the name says."""
    error = refusal(filename="guide.md", declared_type="", head=b"\x89PNG\r\n\x1a\n\x00\x00")
    assert error.code == "mislabelled_type"


def test_it_refuses_a_name_and_type_that_disagree():
    """A .pdf sent as text/html: one of the two labels is wrong."""
    error = refusal(filename="manual.pdf", declared_type="text/html", head=b"%PDF-1.7")
    assert error.code == "mislabelled_type"
    assert "manual.pdf" in error.message


def test_it_asks_for_utf8_when_text_is_utf16():
    """UTF-16 text has NUL bytes but is text: the message says how to fix it."""
    error = refusal(filename="notes.txt", declared_type="", head="hi".encode("utf-16"))
    assert error.code == "undecodable_text"
    assert "UTF-8" in error.message


def test_it_loads_plain_text_as_one_page(write_file):
    """Text comes back whole, with no page number and no title."""
    path = write_file("notes.txt", "Line one.\n\nLine two, café.\n")
    [page] = load_pages(path, kind="text", filename="notes.txt")
    assert page.page_content == "Line one.\n\nLine two, café.\n"
    assert page.metadata == {"page": None, "title": ""}


def test_it_drops_a_utf8_byte_order_mark(write_file):
    """Editors that write a BOM do not leave a stray character at the start."""
    path = write_file("notes.txt", "\ufeffHello".encode())
    [page] = load_pages(path, kind="text", filename="notes.txt")
    assert page.page_content == "Hello"


def test_it_loads_markdown_with_its_headers(write_file):
    """Markdown is read as written; the splitter finds its headings later."""
    path = write_file("guide.md", MARKDOWN)
    [page] = load_pages(path, kind="markdown", filename="guide.md")
    assert page.page_content == MARKDOWN
    assert page.metadata["page"] is None


def test_it_loads_html_text_and_title(write_file):
    """HTML gives its visible text, words kept apart, and its <title>; scripts and styles go."""
    path = write_file("manual.html", HTML)
    [page] = load_pages(path, kind="html", filename="manual.html")
    assert page.metadata == {"page": None, "title": "Router manual"}
    assert "Hold the reset button for ten seconds." in page.page_content
    assert "Home Help" in page.page_content
    assert "tracking" not in page.page_content and "color" not in page.page_content


def test_an_html_page_whose_heading_repeats_its_title_says_it_once(write_file):
    """<title>Ferry</title> then <h1>Ferry</h1>: the passage does not open "Ferry Ferry"."""
    page = "<html><head><title>Carrowmere ferry</title></head><body><h1>Carrowmere ferry</h1>"
    path = write_file("ferry.html", page + "<p>Boats leave at 07:40.</p></body></html>")
    [loaded] = load_pages(path, kind="html", filename="ferry.html")
    assert loaded.page_content.count("Carrowmere ferry") == 1
    assert loaded.page_content.startswith("Carrowmere ferry")
    assert loaded.metadata["title"] == "Carrowmere ferry"
    [kept] = load_pages(write_file("manual.html", HTML), kind="html", filename="manual.html")
    assert kept.page_content.startswith("Router manual")  # said once: kept


def test_it_loads_each_pdf_page_with_its_number(write_file):
    """One Document per PDF page, numbered from 1, titled from the PDF's info."""
    path = write_file(
        "manual.pdf", pdf_bytes(["Alpha page.", "Beta page.", "Gamma page."], title="Manual")
    )
    pages = load_pages(path, kind="pdf", filename="manual.pdf")
    assert [page.metadata["page"] for page in pages] == [1, 2, 3]
    assert [page.page_content for page in pages] == ["Alpha page.", "Beta page.", "Gamma page."]
    assert {page.metadata["title"] for page in pages} == {"Manual"}


def test_it_skips_blank_pdf_pages_but_keeps_real_numbers(write_file):
    """A blank page 2 is dropped; page 3 is still page 3."""
    path = write_file("manual.pdf", pdf_bytes(["Alpha page.", "", "Gamma page."]))
    pages = load_pages(path, kind="pdf", filename="manual.pdf")
    assert [page.metadata["page"] for page in pages] == [1, 3]


def test_it_refuses_a_truncated_pdf(write_file):
    """The first half of a real PDF is corrupt_pdf, not a crash."""
    whole = pdf_bytes(["Alpha page.", "Beta page.", "Gamma page."])
    path = write_file("cut.pdf", whole[: len(whole) // 2])
    error = load_refusal(path, kind="pdf")
    assert error.code == "corrupt_pdf"
    assert "cut.pdf" in error.message


def test_it_refuses_a_pdf_that_starts_right_but_is_garbage(write_file):
    """A PDF header followed by noise is corrupt_pdf too."""
    path = write_file("noise.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 4)
    assert load_refusal(path, kind="pdf").code == "corrupt_pdf"


def test_it_refuses_a_password_protected_pdf(write_file):
    """A PDF that needs a password to open is encrypted_pdf, with a way out."""
    path = write_file("secret.pdf", locked_pdf_bytes(["Hidden."], user_password="hunter2"))
    error = load_refusal(path, kind="pdf")
    assert error.code == "encrypted_pdf"
    assert "password" in error.message


def test_it_reads_a_pdf_encrypted_only_against_copying(write_file):
    """An empty user password opens without asking in any viewer, so it is read."""
    path = write_file("restricted.pdf", locked_pdf_bytes(["Open text."], user_password=""))
    [page] = load_pages(path, kind="pdf", filename="restricted.pdf")
    assert page.page_content == "Open text."


@pytest.mark.parametrize(
    ("name", "kind", "content"),
    [
        ("empty.txt", "text", b""),
        ("blank.md", "markdown", b"  \n\n\t \n"),
        ("blank.html", "html", b"<html><head><title></title></head><body><p> </p></body></html>"),
        ("blank.pdf", "pdf", pdf_bytes([""])),
    ],
)
def test_it_refuses_a_document_with_no_text(write_file, name, kind, content):
    """Nothing but whitespace (or a blank PDF page) is empty_document."""
    error = load_refusal(write_file(name, content), kind=kind)
    assert error.code == "empty_document"
    assert name in error.message


@pytest.mark.parametrize(("name", "kind"), [("latin.txt", "text"), ("latin.html", "html")])
def test_it_refuses_text_that_is_not_utf8(write_file, name, kind):
    """Latin-1 bytes are refused with a message saying to save as UTF-8."""
    path = write_file(name, "Café crème, déjà vu.".encode("latin-1"))
    error = load_refusal(path, kind=kind)
    assert error.code == "undecodable_text"
    assert "UTF-8" in error.message
