"""Conversations over HTTP: list, create, read (with the caller's feedback), change, delete."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from chat import selectors, services
from chat.models import Conversation
from chat.refusals import Refusal
from chat.serializers import conversation_data, message_data
from feedback.selectors import conversation_feedback
from live.api.base import ApiView, json_object

_NOT_AN_OBJECT = "The request body must be a JSON object."


class ConversationListApi(ApiView):
    def get(self, request: HttpRequest) -> JsonResponse:
        conversations = selectors.conversation_list(owner=request.user)
        return JsonResponse({"conversations": [conversation_data(c) for c in conversations]})

    def post(self, request: HttpRequest) -> JsonResponse:
        title = _body(request).get("title", "")
        if not isinstance(title, str):
            message = "The title must be text."
            raise Refusal("invalid", message, "title", fields={"title": message})
        conversation = services.conversation_create(owner=request.user, title=title)
        return JsonResponse(conversation_data(conversation), status=201)


class ConversationApi(ApiView):
    def get(self, request: HttpRequest, conversation_id: int) -> JsonResponse:
        conversation = self._conversation(request, conversation_id)
        messages = selectors.message_list(conversation=conversation)
        feedback = conversation_feedback(user=request.user, conversation=conversation)
        return JsonResponse(
            {
                "conversation": conversation_data(conversation),
                "messages": [message_data(message) for message in messages],
                "ratings": feedback["ratings"],
                "preferences": feedback["preferences"],
                "written": feedback["written"],
            }
        )

    def patch(self, request: HttpRequest, conversation_id: int) -> JsonResponse:
        changes = _body(request)
        conversation = self._conversation(request, conversation_id)
        conversation = services.conversation_update(conversation=conversation, changes=changes)
        return JsonResponse(conversation_data(conversation))

    def delete(self, request: HttpRequest, conversation_id: int) -> HttpResponse:
        conversation = self._conversation(request, conversation_id)
        services.conversation_delete(conversation=conversation)
        return HttpResponse(status=204)

    def _conversation(self, request: HttpRequest, conversation_id: int) -> Conversation:
        return selectors.conversation_get(owner=request.user, conversation_id=conversation_id)


def _body(request: HttpRequest) -> dict:
    refusal = Refusal("invalid", _NOT_AN_OBJECT, fields={"__all__": _NOT_AN_OBJECT})
    return json_object(request, refusal=refusal, empty={})
