"""Indexing runs in a real Celery worker on Redis, never in the web request."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from documents.models import Chunk, Document
from tests.documents_tests.conftest import MANUAL
from tests.support.servers import celery_process, process_env

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
