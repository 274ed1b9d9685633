"""Documents fixtures: a private documents folder, Celery tasks run in the test
process (the real task bodies, through Celery's eager mode), alice's and bob's
logged-in clients (the feedback tests'), and real files of each format."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from chat import services as chat_services
from chat.models import Conversation
from config.celery import app as celery_app
from documents import services
from documents.models import Document
from tests.chat_tests.conftest import (  # noqa: F401  (browser fixtures and hook, shared)
    browser,
    page,
    page_events,
    pytest_runtest_makereport,
)
from tests.feedback_tests.conftest import alice_client, bob_client  # noqa: F401 (fixtures)
from tests.llm_tests.retrieval.conftest import pdf_bytes

MANUAL = (
    "# Kettle K-40 manual\n\n"
    "## Descaling\n\n"
    "Descale the Kettle K-40 every 6 weeks with citric acid. The descaling light "
    "blinks amber when it is due.\n\n"
    "## Warranty\n\n"
    "The warranty lasts 27 months from the date of purchase and covers the heating plate.\n"
)


@pytest.fixture(autouse=True)
def documents_dir(settings, tmp_path: Path) -> Path:
    settings.DOCUMENTS_DIR = tmp_path / "documents"
    settings.DOCUMENTS_EMBEDDING_MODEL = ""
    return settings.DOCUMENTS_DIR


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Queued tasks run at once in this process: the real task, no broker."""
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = False


@pytest.fixture
def conversation(alice) -> Conversation:
    return chat_services.conversation_create(owner=alice, title="Kettle")


@pytest.fixture
def upload(eager_tasks) -> Callable[..., Document]:
    """Uploads a file through the service and indexes it (eagerly); returns it fresh."""

    def upload(owner, name: str, content: bytes | str, *, conversation=None, content_type=""):
        data = content.encode() if isinstance(content, str) else content
        uploaded = SimpleUploadedFile(name, data, content_type=content_type)
        document = services.document_upload(
            owner=owner, uploaded=uploaded, conversation=conversation
        )
        document.refresh_from_db()
        return document

    return upload


def manual_pdf() -> bytes:
    return pdf_bytes(
        [
            "Kettle K-40 manual. Descale every 6 weeks with citric acid.",
            "Warranty: 27 months from the date of purchase.",
        ]
    )
