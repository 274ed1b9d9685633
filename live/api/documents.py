"""Documents over HTTP: upload, list, read state, download, delete; passages by id.

Every read goes through ``documents.selectors``, which scope it to the caller:
someone else's document or passage answers 404 ``not_found``, like a missing one.
"""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse

from chat import selectors as chat_selectors
from chat.models import Conversation
from chat.refusals import Refusal
from documents import selectors, services
from documents.serializers import document_data, passage_data
from live.api.base import ApiView

_DOWNLOAD_TYPES = {"text": "text/plain", "markdown": "text/markdown", "pdf": "application/pdf"}


class DocumentListApi(ApiView):
    def get(self, request: HttpRequest) -> JsonResponse:
        conversation = _conversation(request, request.GET.get("conversation"))
        documents = selectors.document_list(
            owner=request.user, conversation=conversation, library=request.GET.get("library") == "1"
        )
        return JsonResponse({"documents": [document_data(document) for document in documents]})

    def post(self, request: HttpRequest) -> JsonResponse:
        # A body too large for any allowed file is refused before it is read.
        services.upload_check_length(content_length=_int_header(request, "CONTENT_LENGTH"))
        uploaded = request.FILES.get("file")
        if uploaded is None:
            raise Refusal("invalid", 'Choose a file to upload (form field "file").', "file")
        document = services.document_upload(
            owner=request.user,
            uploaded=uploaded,
            conversation=_conversation(request, request.POST.get("conversation")),
            declared_size=_declared_size(request.POST.get("size")),
        )
        return JsonResponse(document_data(document), status=202)


class DocumentApi(ApiView):
    def get(self, request: HttpRequest, document_id: str) -> JsonResponse:
        document = selectors.document_get(owner=request.user, document_id=document_id)
        return JsonResponse(document_data(document))

    def delete(self, request: HttpRequest, document_id: str) -> HttpResponse:
        document = selectors.document_get(owner=request.user, document_id=document_id)
        services.document_delete(document=document)
        return HttpResponse(status=204)


class DocumentFileApi(ApiView):
    """The file as uploaded, always as a download: HTML is never rendered on our origin."""

    def get(self, request: HttpRequest, document_id: str) -> HttpResponse:
        document = selectors.document_get(owner=request.user, document_id=document_id)
        response = FileResponse(
            open(services.file_path(document), "rb"),  # noqa: SIM115 - FileResponse closes it
            as_attachment=True,
            filename=document.filename,
            content_type=_DOWNLOAD_TYPES.get(document.kind, "application/octet-stream"),
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response


class PassageApi(ApiView):
    def get(self, request: HttpRequest, passage_id: str) -> JsonResponse:
        chunk = selectors.passage_get(owner=request.user, chunk_id=passage_id)
        return JsonResponse(passage_data(chunk))


def _conversation(request: HttpRequest, value: str | None) -> Conversation | None:
    if value in (None, ""):
        return None
    conversation_id = selectors.parse_id(value, "conversation")
    return chat_selectors.conversation_get(owner=request.user, conversation_id=conversation_id)


def _declared_size(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    if not (value.isascii() and value.isdigit()):
        raise Refusal("invalid", "The size must be the file's length in bytes.", "size")
    return int(value)


def _int_header(request: HttpRequest, name: str) -> int:
    value = request.META.get(name, "")
    return int(value) if value.isascii() and value.isdigit() else 0
