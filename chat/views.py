"""Pages (sign up, the chat app shell) and the JSON HTTP API of docs/protocol.md.

The server renders only the shell; static/js/ drives the rest through the API
and the websocket. Each API method parses, calls one selector or service and
shapes the answer with chat.serializers.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.views import View
from django.views.decorators.http import require_http_methods

from chat import selectors, services
from chat.forms import SignupForm
from chat.models import Conversation
from chat.serializers import conversation_data, message_data
from feedback.selectors import conversation_feedback, reason_choices
from feedback.services import MAX_COMMENT_CHARS

# -- pages ----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("chat:index")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save())
        return redirect("chat:index")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return _app_page(request, conversation_id=None)


@login_required
def conversation_page(request: HttpRequest, conversation_id: int) -> HttpResponse:
    try:
        conversation = selectors.conversation_get(
            owner=request.user, conversation_id=conversation_id
        )
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None
    return _app_page(request, conversation_id=conversation.pk)


def _app_page(request: HttpRequest, *, conversation_id: int | None) -> HttpResponse:
    client_config = {
        "conversationId": conversation_id,
        "maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS,
        "loginUrl": resolve_url(settings.LOGIN_URL),
        "feedback": _feedback_config(),
    }
    return render(request, "chat/app.html", {"client_config": client_config})


def _feedback_config() -> dict:
    """The preset reasons for each thumb (key -> label, in order) and the comment limit."""
    choices = reason_choices()
    return {
        "reasons": {"up": choices["up"], "down": choices["down"]},
        "maxCommentChars": MAX_COMMENT_CHARS,
    }


# -- JSON API -------------------------------------------------------------------


class ApiView(View):
    """A JSON endpoint: session auth, CSRF (by the middleware), errors as JSON."""

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return api_error(401, "unauthenticated", "Log in first.")
        try:
            return super().dispatch(request, *args, **kwargs)
        except ValidationError as error:
            fields = _field_messages(error)
            return JsonResponse({"error": {"code": "invalid", "fields": fields}}, status=400)
        except ObjectDoesNotExist:
            # Someone else's conversation answers exactly like a missing one.
            return api_error(404, "not_found", "No such conversation.")


class ConversationListApi(ApiView):
    def get(self, request: HttpRequest) -> JsonResponse:
        conversations = selectors.conversation_list(owner=request.user)
        return JsonResponse({"conversations": [conversation_data(c) for c in conversations]})

    def post(self, request: HttpRequest) -> JsonResponse:
        title = json_body(request).get("title", "")
        if not isinstance(title, str):
            raise ValidationError({"title": "The title must be text."})
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
            }
        )

    def patch(self, request: HttpRequest, conversation_id: int) -> JsonResponse:
        changes = json_body(request)
        conversation = self._conversation(request, conversation_id)
        conversation = services.conversation_update(conversation=conversation, changes=changes)
        return JsonResponse(conversation_data(conversation))

    def delete(self, request: HttpRequest, conversation_id: int) -> HttpResponse:
        conversation = self._conversation(request, conversation_id)
        services.conversation_delete(conversation=conversation)
        return HttpResponse(status=204)

    def _conversation(self, request: HttpRequest, conversation_id: int) -> Conversation:
        return selectors.conversation_get(owner=request.user, conversation_id=conversation_id)


def json_body(request: HttpRequest) -> dict:
    """The request's JSON object; an empty body is ``{}``."""
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ValidationError({"__all__": "The request body must be a JSON object."})
    return body


def api_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _field_messages(error: ValidationError) -> dict[str, str]:
    if hasattr(error, "error_dict"):
        return {name: " ".join(messages) for name, messages in error.message_dict.items()}
    return {"__all__": " ".join(error.messages)}
