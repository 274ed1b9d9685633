from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "documents"
    verbose_name = "Documents"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from documents.models import Document
        from documents.services import document_forget

        # However a document goes (its own delete, or its conversation's or owner's),
        # its file goes too and its owner's index is rebuilt without it.
        post_delete.connect(document_forget, sender=Document, dispatch_uid="documents.forget")
