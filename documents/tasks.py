from celery import shared_task
from django.conf import settings

from documents import services


# acks_late + reject_on_worker_lost: a worker killed mid-document hands it to the
# next worker; nothing of the first attempt was kept (chunks land with "ready").
@shared_task(name="documents.index", acks_late=True, reject_on_worker_lost=True)
def index_document(document_id: int) -> None:
    services.document_index(document_id=document_id)


@shared_task(name="documents.rebuild_index")
def rebuild_index(owner_id: int) -> None:
    services.search_index_rebuild(owner_id=owner_id)


@shared_task(name="documents.requeue_stale")
def requeue_stale_documents() -> int:
    return services.stale_documents_requeue(older_than_seconds=settings.DOCUMENTS_STALE_SECONDS)
