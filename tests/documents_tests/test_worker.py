"""Real processes: indexing in a Celery worker on Redis, never in the web request;
an upload cut off on its way to a real ASGI server."""

from __future__ import annotations

import signal
import socket
import time

import psutil
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from documents.models import Chunk, Document
from tests.documents_tests.conftest import MANUAL
from tests.support.embedding import build_tiny_embedding_model
from tests.support.servers import app_env, asgi_server, celery_process, process_env

pytestmark = [pytest.mark.django_db(transaction=True)]


def wait_for_status(document_id: int, statuses: set[str], timeout: float = 120) -> Document:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = Document.objects.get(pk=document_id)
        if document.status in statuses:
            return document
        time.sleep(0.25)
    raise AssertionError(f"document {document_id} stayed {document.status}")


def test_a_real_worker_indexes_uploads_queued_before_it_started(
    alice_client, conversation, documents_dir, tiny_model_dir, tmp_path
):
    uploads = [
        SimpleUploadedFile("kettle.md", MANUAL.encode(), content_type="text/markdown"),
        SimpleUploadedFile("broken.pdf", b"%PDF-1.4 not really", content_type="application/pdf"),
    ]
    ids = []
    for uploaded in uploads:
        answer = alice_client.post(
            "/api/documents/", {"file": uploaded, "conversation": conversation.pk}
        )
        assert answer.status_code == 202
        assert answer.json()["status"] == "queued"  # the request only stored it
        ids.append(answer.json()["id"])
    env = process_env(DOCUMENTS_DIR=str(documents_dir), CHAT_MODEL=str(tiny_model_dir))
    with celery_process("worker", env, tmp_path / "worker.log"):
        ready = wait_for_status(ids[0], {"ready", "failed"})
        failed = wait_for_status(ids[1], {"ready", "failed"})
    assert (ready.status, ready.error) == ("ready", "")
    assert Chunk.objects.filter(document=ready).count() == ready.chunk_count > 0
    assert (failed.status, failed.error_code) == ("failed", "corrupt_pdf")
    assert not Chunk.objects.filter(document=failed).exists()
    # The web process finds the worker's index.
    answer = alice_client.get(f"/api/documents/{ids[0]}").json()
    assert answer["status"] == "ready" and answer["chunks"] == ready.chunk_count


CSRF = "k" * 32


def raw_upload(url: str, session: str, content: bytes, *, send_bytes: int | None = None) -> bytes:
    """POST a multipart upload over a plain socket; with ``send_bytes``, hang up after
    that many bytes of the body, as a browser whose connection dropped."""
    boundary = "----loopchat-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST /api/documents/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Cookie: sessionid={session}; csrftoken={CSRF}\r\nX-CSRFToken: {CSRF}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + body[:send_bytes])
        if send_bytes is not None:
            time.sleep(0.5)
            return b""
        return sock.recv(65536)


def test_an_upload_cut_off_midway_leaves_nothing_behind(
    alice, documents_dir, tiny_model_dir, tmp_path
):
    client = Client()
    client.force_login(alice)
    session = client.cookies["sessionid"].value
    env = app_env(tiny_model_dir, DOCUMENTS_DIR=str(documents_dir), ENGINE_PRELOAD="0")
    content = ("The warranty lasts 27 months. " * 4000).encode()  # about 120 KB
    with asgi_server(env, tmp_path / "server.log") as url:
        whole = raw_upload(url, session, content)
        assert whole.startswith(b"HTTP/1.1 202"), whole[:300]  # the raw path really uploads
        assert Document.objects.count() == 1
        raw_upload(url, session, content, send_bytes=len(content) // 2)
        time.sleep(1)
    assert Document.objects.count() == 1  # only the whole one
    stored = [p for p in (documents_dir / "files").rglob("*") if p.is_file()]
    assert len(stored) == 1 and stored[0].stat().st_size == len(content)


def test_a_worker_process_killed_mid_document_hands_it_to_the_next(
    alice_client, settings, documents_dir, tiny_model_dir, model_cache_dir, tmp_path
):
    """The prefork child dies (as under the OOM killer) while embedding: the task is
    requeued at once, the next child indexes it whole, and no passage is doubled."""
    embedding = build_tiny_embedding_model(
        model_cache_dir / "tiny-random-embedding", tiny_model_dir
    )
    settings.DOCUMENTS_EMBEDDING_MODEL = str(embedding)
    paragraphs = [
        f"Model K-{n} keeps its warranty for {n % 40 + 1} months. " * 14 for n in range(900)
    ]
    uploaded = SimpleUploadedFile("long.txt", "\n\n".join(paragraphs).encode(), "text/plain")
    document_id = alice_client.post("/api/documents/", {"file": uploaded}).json()["id"]
    env = process_env(
        DOCUMENTS_DIR=str(documents_dir),
        DOCUMENTS_EMBEDDING_MODEL=str(embedding),
        CHAT_MODEL=str(tiny_model_dir),
    )
    with celery_process("worker", env, tmp_path / "worker.log", pool="prefork") as worker:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            document = Document.objects.get(pk=document_id)
            if document.status == "indexing" and document.progress >= 0.5:
                break
            assert document.status != "ready", "indexing ended before the kill"
            time.sleep(0.1)
        children = psutil.Process(worker.pid).children()
        assert len(children) == 1
        children[0].send_signal(signal.SIGKILL)
        document = wait_for_status(document_id, {"ready", "failed"}, timeout=180)
    assert document.status == "ready", document.error
    assert document.attempts == 2
    chunks = Chunk.objects.filter(document=document)
    assert chunks.count() == document.chunk_count
    assert chunks.values("ordinal").distinct().count() == document.chunk_count
