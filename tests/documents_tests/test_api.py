"""Documents over HTTP: each format ingested, state, download, delete, passages;
owner-only access; every bad input refused or failed with nothing half-indexed."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from documents.models import Chunk, Document, SearchIndex
from tests.documents_tests.conftest import MANUAL, manual_pdf
from tests.llm_tests.retrieval.conftest import locked_pdf_bytes, pdf_bytes

pytestmark = [pytest.mark.django_db(transaction=True)]

HTML = (
    "<html><head><title>Kettle</title><script>alert('no')</script></head><body>"
    "<h1>Kettle K-40</h1><p>The warranty lasts 27 months.</p></body></html>"
)
FORMATS = [
    ("manual.txt", MANUAL, "text/plain", "text"),
    ("manual.md", MANUAL, "text/markdown", "markdown"),
    ("manual.html", HTML, "text/html", "html"),
    ("manual.pdf", None, "application/pdf", "pdf"),
]


def post(client, name, content, content_type="", **fields):
    data = content.encode() if isinstance(content, str) else content
    uploaded = SimpleUploadedFile(name, data, content_type=content_type)
    return client.post("/api/documents/", {"file": uploaded, **fields})


def stored_files(documents_dir):
    return sorted(p for p in (documents_dir / "files").rglob("*") if p.is_file())


@pytest.mark.parametrize(("name", "content", "content_type", "kind"), FORMATS)
def test_it_ingests_each_format_into_searchable_passages(
    eager_tasks, alice_client, conversation, name, content, content_type, kind
):
    content = manual_pdf() if content is None else content
    answer = post(alice_client, name, content, content_type, conversation=conversation.pk)
    assert answer.status_code == 202, answer.content
    document = alice_client.get(f"/api/documents/{answer.json()['id']}").json()
    assert (document["status"], document["kind"], document["error"]) == ("ready", kind, None)
    assert document["progress"] == 1.0 and document["chunks"] >= 1
    chunks = Chunk.objects.filter(document_id=document["id"])
    text = " ".join(chunks.values_list("text", flat=True))
    assert "27 months" in text
    assert "alert" not in text  # an HTML script is not text
    if kind == "pdf":
        assert document["pages"] == 2
        assert set(chunks.values_list("page", flat=True)) == {1, 2}
    passage = alice_client.get(f"/api/passages/{chunks.first().pk}").json()
    assert passage["filename"] == name and passage["document"] == document["id"]


def test_it_lists_by_conversation_and_library_and_downloads_the_file_as_uploaded(
    eager_tasks, alice_client, conversation
):
    attached = post(alice_client, "a.md", MANUAL, conversation=conversation.pk).json()
    library = post(alice_client, "b.txt", MANUAL).json()

    def ids(query):
        return [d["id"] for d in alice_client.get(f"/api/documents/{query}").json()["documents"]]

    assert ids(f"?conversation={conversation.pk}") == [attached["id"]]
    assert ids("?library=1") == [library["id"]]
    assert sorted(ids("")) == sorted([attached["id"], library["id"]])
    download = alice_client.get(f"/api/documents/{attached['id']}/file")
    assert download["Content-Disposition"].startswith("attachment")
    assert b"".join(download.streaming_content).decode() == MANUAL


def test_it_deletes_a_document_its_file_and_its_passages(
    eager_tasks, alice_client, alice, documents_dir
):
    document = post(alice_client, "a.md", MANUAL).json()
    assert stored_files(documents_dir)
    assert alice_client.delete(f"/api/documents/{document['id']}").status_code == 204
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert stored_files(documents_dir) == []
    assert alice_client.get(f"/api/documents/{document['id']}").status_code == 404
    # The index was rebuilt without it (the rebuild task ran eagerly).
    assert SearchIndex.objects.get(owner=alice).chunk_count == 0


def test_deleting_a_conversation_or_a_user_removes_their_files_and_index(
    eager_tasks, alice_client, alice, conversation, documents_dir
):
    post(alice_client, "a.md", MANUAL, conversation=conversation.pk)
    post(alice_client, "b.md", MANUAL)
    assert alice_client.delete(f"/api/conversations/{conversation.pk}/").status_code == 204
    assert [d.filename for d in Document.objects.all()] == ["b.md"]
    assert len(stored_files(documents_dir)) == 1
    assert SearchIndex.objects.get(owner=alice).chunk_count == Document.objects.get().chunk_count
    index_folder = documents_dir / "indexes" / f"owner-{alice.pk}"
    assert index_folder.exists()
    alice.delete()
    assert stored_files(documents_dir) == []
    assert not index_folder.exists()


def test_it_keeps_each_owners_documents_and_passages_to_them(
    eager_tasks, alice_client, bob_client, conversation
):
    document = post(alice_client, "a.md", MANUAL, conversation=conversation.pk).json()
    chunk = Chunk.objects.filter(document_id=document["id"]).first()
    for path in (
        f"/api/documents/{document['id']}",
        f"/api/documents/{document['id']}/file",
        f"/api/passages/{chunk.pk}",
    ):
        answer = bob_client.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "not_found"
    assert bob_client.delete(f"/api/documents/{document['id']}").status_code == 404
    assert bob_client.get("/api/documents/").json()["documents"] == []
    # Nor can bob attach a file to alice's conversation.
    answer = post(bob_client, "b.md", MANUAL, conversation=conversation.pk)
    assert answer.status_code == 404
    assert Document.objects.count() == 1


@pytest.mark.parametrize("bad", ["abc", "\u00b2", "-1"])
def test_it_refuses_an_id_that_is_not_a_whole_number(alice_client, bad):
    """ "²" is a digit to str.isdigit but not to int(): still a 400, never a 500."""
    for path in (f"/api/documents/{bad}", f"/api/passages/{bad}"):
        answer = alice_client.get(path)
        assert answer.status_code == 400, path
        assert answer.json()["error"]["code"] == "invalid"
    answer = alice_client.get(f"/api/documents/?conversation={bad}")
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "conversation"


def test_it_answers_401_to_a_visitor(client):
    assert client.get("/api/documents/").status_code == 401


@pytest.mark.parametrize(
    ("name", "content", "content_type", "status", "code"),
    [
        ("tool.exe", b"MZ\x90\x00binary", "application/octet-stream", 415, "unsupported_type"),
        ("notes.docx", b"PK\x03\x04zip", "", 415, "unsupported_type"),
        ("manual.pdf", b"just text, not a PDF", "application/pdf", 415, "mislabelled_type"),
        ("manual.txt", b"%PDF-1.4 a pdf in disguise", "text/plain", 415, "mislabelled_type"),
        ("empty.txt", b"", "text/plain", 400, "empty_document"),
    ],
)
def test_it_refuses_a_bad_file_before_storing_anything(
    eager_tasks, alice_client, documents_dir, name, content, content_type, status, code
):
    answer = post(alice_client, name, content, content_type)
    assert answer.status_code == status, answer.content
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == (code, "file")
    assert name.split(".")[0] in error["message"] or error["message"].endswith(".")
    assert not Document.objects.exists()
    assert not (documents_dir / "files").exists() or stored_files(documents_dir) == []


def test_it_refuses_an_oversized_file_naming_the_limit(
    eager_tasks, settings, alice_client, documents_dir
):
    settings.DOCUMENTS_MAX_UPLOAD_BYTES = 1000
    answer = post(alice_client, "big.txt", "word " * 300, "text/plain")
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "too_large"
    assert answer.json()["error"]["message"] == (
        "big.txt is 1.5 KB; files may be at most 1000 bytes."
    )
    assert not Document.objects.exists()


def test_it_refuses_a_body_too_large_for_any_file_before_reading_it(
    eager_tasks, settings, alice_client
):
    settings.DOCUMENTS_MAX_UPLOAD_BYTES = 1000
    answer = post(alice_client, "big.txt", "word " * 20_000, "text/plain")
    assert answer.status_code == 413
    message = answer.json()["error"]["message"]
    assert message.startswith("The upload is 9") and message.endswith("at most 1000 bytes.")
    assert not Document.objects.exists()


def test_it_refuses_an_upload_cut_short_on_the_way(eager_tasks, alice_client, documents_dir):
    answer = post(alice_client, "a.md", MANUAL[:40], "text/markdown", size=str(len(MANUAL)))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "incomplete_upload"
    assert not Document.objects.exists()
    assert not (documents_dir / "files").exists() or stored_files(documents_dir) == []


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("broken.pdf", b"%PDF-1.4\n1 0 obj <</Type /Catalog>> garbage" * 3, "corrupt_pdf"),
        ("locked.pdf", None, "encrypted_pdf"),
        ("blank.pdf", "blank", "empty_document"),
        ("spaces.md", b"   \n\n  \n", "empty_document"),
    ],
)
def test_a_file_that_fails_to_parse_fails_with_a_reason_and_leaves_no_passage(
    eager_tasks, alice_client, alice, name, content, code
):
    if content is None:
        content = locked_pdf_bytes(["secret"], user_password="pw")
    elif content == "blank":
        content = pdf_bytes(["", ""])
    answer = post(alice_client, name, content)
    assert answer.status_code == 202, answer.content
    document = alice_client.get(f"/api/documents/{answer.json()['id']}").json()
    assert document["status"] == "failed"
    assert document["error"]["code"] == code, document["error"]
    assert document["error"]["message"]
    assert not Chunk.objects.exists()
    assert SearchIndex.objects.filter(owner=alice, chunk_count__gt=0).count() == 0
