"""The indexing task's own guarantees: a silent document is queued again by beat,
one that stopped too often fails with a reason, a second delivery doubles nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from documents import services
from documents.models import Chunk, Document
from documents.tasks import requeue_stale_documents
from tests.documents_tests.conftest import MANUAL

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queued(alice) -> Document:
    """A stored upload whose indexing task never ran (no eager mode, no worker)."""
    uploaded = SimpleUploadedFile("kettle.md", MANUAL.encode(), content_type="text/markdown")
    return services.document_upload(owner=alice, uploaded=uploaded)


def test_beat_queues_again_a_document_whose_indexing_went_silent(settings, queued, eager_tasks):
    Document.objects.filter(pk=queued.pk).update(
        status=Document.Status.PARSING, updated_at=timezone.now() - timedelta(hours=1)
    )
    fresh = Document.objects.create(
        owner=queued.owner, filename="new.md", kind="markdown", size=1, sha256="", stored_path=""
    )
    assert requeue_stale_documents() == 1  # the stale one only (run eagerly, it indexes)
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("ready", 1)
    assert Document.objects.get(pk=fresh.pk).status == "queued"


def test_a_document_that_stopped_too_often_fails_with_the_reason(settings, queued):
    Document.objects.filter(pk=queued.pk).update(
        status=Document.Status.INDEXING, attempts=settings.DOCUMENTS_MAX_ATTEMPTS
    )
    services.document_index(document_id=queued.pk)
    queued.refresh_from_db()
    assert (queued.status, queued.error_code) == ("failed", "worker_lost")
    assert "3 times" in queued.error and "nothing was kept" in queued.error
    assert not Chunk.objects.exists()


def test_a_second_delivery_of_a_finished_document_changes_nothing(queued):
    services.document_index(document_id=queued.pk)
    queued.refresh_from_db()
    chunks = list(Chunk.objects.values_list("pk", flat=True))
    services.document_index(document_id=queued.pk)
    queued.refresh_from_db()
    assert queued.status == "ready" and queued.attempts == 1
    assert list(Chunk.objects.values_list("pk", flat=True)) == chunks
