"""Turning an uploaded file into text pages, or a refusal a user can act on.

:func:`detect_kind` decides what a file is from its name, the type the browser
declared and its first bytes, before anything parses it; :func:`load_pages`
reads it with LangChain's loaders. Both raise :class:`DocumentError`.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from langchain_core.documents import Document
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PyPdfError

# langchain-community warns at import that it is being sunset. The loaders we
# use still work and have no standalone package yet; the warning would only
# repeat in every process that reads a document.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader, TextLoader

KINDS_BY_EXTENSION = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
KINDS_BY_TYPE = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
}
# Types that say nothing about the content: browsers send them when they do not know.
NO_CLAIM = {"", "application/octet-stream"}
# A declared type may be broader than the extension: text/plain covers any text file.
COMPATIBLE = {
    "text": {"text", "markdown"},
    "markdown": {"markdown", "text"},
    "html": {"html", "text"},
    "pdf": {"pdf"},
}
ACCEPTED = "a PDF, plain text (.txt), Markdown (.md) or HTML (.html) file"
PDF_MAGIC = b"%PDF-"
UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")
# pypdf reports some damage as plain Python errors rather than its own.
PDF_DAMAGE = (PyPdfError, ValueError, KeyError, IndexError, TypeError)


class DocumentError(Exception):
    """Why a file cannot become a document: ``code`` for programs, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def detect_kind(*, filename: str, declared_type: str, head: bytes) -> str:
    """``"text"``, ``"markdown"``, ``"html"`` or ``"pdf"``: what the file really is.

    The name and the declared type must agree where both say something, and
    the first bytes must fit: a renamed file fails here, with a message naming
    it, rather than later as a confusing parse error.
    """
    kind = _kind_from_labels(filename=filename, declared_type=declared_type)
    if kind == "pdf" and not head.startswith(PDF_MAGIC):
        raise DocumentError(
            "mislabelled_type", f"{filename} is labelled as a PDF but its contents are not a PDF."
        )
    if kind != "pdf":
        _check_text_head(filename=filename, head=head)
    return kind


def _kind_from_labels(*, filename: str, declared_type: str) -> str:
    suffix = Path(filename).suffix.lower()
    by_name = KINDS_BY_EXTENSION.get(suffix)
    media_type = declared_type.split(";")[0].strip().lower()
    claims = media_type not in NO_CLAIM
    by_type = KINDS_BY_TYPE.get(media_type)
    if (suffix and by_name is None) or (not suffix and by_type is None):
        raise DocumentError(
            "unsupported_type", f"LoopChat cannot read {filename}. Upload {ACCEPTED}."
        )
    if by_name is None:
        return by_type
    if claims and by_type not in COMPATIBLE[by_name]:
        raise DocumentError(
            "mislabelled_type",
            f"{filename} is named like a {by_name} file but was sent as {media_type}. "
            f"Upload {ACCEPTED}.",
        )
    return by_name


def _check_text_head(*, filename: str, head: bytes) -> None:
    if head.startswith(UTF16_MARKS):
        raise DocumentError(
            "undecodable_text", f"{filename} is saved as UTF-16. Save it as UTF-8 and upload again."
        )
    if head.startswith(PDF_MAGIC) or b"\x00" in head:
        found = "a PDF" if head.startswith(PDF_MAGIC) else "binary data"
        raise DocumentError(
            "mislabelled_type",
            f"{filename} is named like a text file but holds {found}. Upload {ACCEPTED}.",
        )


def load_pages(path: Path, *, kind: str, filename: str) -> list[Document]:
    """The text of the file at ``path``: one Document per PDF page, else one in all.

    Each has ``page`` (1-based for PDF pages, else None) and ``title`` in its
    metadata. Blank PDF pages are left out; the others keep their real numbers.
    """
    if kind == "pdf":
        pages = _load_pdf(path, filename=filename)
    else:
        pages = _load_text(path, kind=kind, filename=filename)
    if not pages:
        raise DocumentError("empty_document", f"{filename} has no text that LoopChat can read.")
    return pages


def _load_pdf(path: Path, *, filename: str) -> list[Document]:
    _check_not_locked(path, filename=filename)
    try:
        loaded = PyPDFLoader(str(path)).load()
    except PDF_DAMAGE as error:
        raise _corrupt(filename) from error
    return [
        _page(loaded_page.page_content, page=loaded_page.metadata["page"] + 1, source=loaded_page)
        for loaded_page in loaded
        if loaded_page.page_content.strip()
    ]


def _check_not_locked(path: Path, *, filename: str) -> None:
    """Refuse a PDF that needs a password to open.

    PDFs encrypted with an empty user password (only printing or copying is
    restricted) open in every viewer without asking; those are read.
    """
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise _locked(filename)
    except DependencyError as error:
        raise _locked(filename) from error
    except PDF_DAMAGE as error:
        raise _corrupt(filename) from error


def _locked(filename: str) -> DocumentError:
    return DocumentError(
        "encrypted_pdf",
        f"{filename} is protected with a password. Remove the password and upload it again.",
    )


def _corrupt(filename: str) -> DocumentError:
    return DocumentError(
        "corrupt_pdf", f"{filename} is damaged or incomplete and cannot be read as a PDF."
    )


def _load_text(path: Path, *, kind: str, filename: str) -> list[Document]:
    try:
        loaded = _text_loader(path, kind=kind).load()
    except (UnicodeDecodeError, RuntimeError) as error:
        if not _caused_by_decoding(error):
            raise
        raise DocumentError(
            "undecodable_text", f"{filename} is not UTF-8 text. Save it as UTF-8 and upload again."
        ) from error
    pages = []
    for document in loaded:
        text = document.page_content
        if kind == "html":
            text = _without_head_title(_tidy(text), str(document.metadata.get("title") or ""))
        if text.strip():
            pages.append(_page(text, page=None, source=document))
    return pages


def _text_loader(path: Path, *, kind: str) -> BSHTMLLoader | TextLoader:
    # utf-8-sig is UTF-8 that also drops the byte-order mark some editors write.
    if kind == "html":
        # html.parser is built in (lxml is not installed); a space between tags
        # keeps "<li>Home</li><li>About</li>" two words.
        return BSHTMLLoader(
            str(path),
            open_encoding="utf-8-sig",
            bs_kwargs={"features": "html.parser"},
            get_text_separator=" ",
        )
    return TextLoader(str(path), encoding="utf-8-sig", autodetect_encoding=False)


def _caused_by_decoding(error: Exception) -> bool:
    """TextLoader wraps every failure in RuntimeError; BSHTMLLoader raises it bare."""
    return isinstance(error, UnicodeDecodeError) or isinstance(error.__cause__, UnicodeDecodeError)


def _tidy(text: str) -> str:
    """HTML text with the markup's indentation and blank runs squeezed out."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _without_head_title(text: str, title: str) -> str:
    """HTML text without its <title>'s words in front when the body says them again
    (most pages open with the title as their heading): a passage shows it once."""
    title = title.strip()
    if not title or not text.startswith(title):
        return text
    rest = text[len(title) :].lstrip()
    return rest if title in rest else text


def _page(text: str, *, page: int | None, source: Document) -> Document:
    """A loaded page with only the metadata we keep (the loaders add file paths)."""
    title = str(source.metadata.get("title") or "").strip()
    # BSHTMLLoader writes str(None) for a <title> with no single string in it.
    if title == "None":
        title = ""
    return Document(page_content=text, metadata={"page": page, "title": title})
