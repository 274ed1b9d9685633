from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from live.api import openai
from live.metrics.exposition import metrics_view


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    # The OpenAI-compatible API for other apps, with API keys (docs/protocol.md).
    path("v1/chat/completions", openai.chat_completions, name="v1-chat-completions"),
    path("v1/models", openai.models, name="v1-models"),
    path("v1/feedback", openai.feedback, name="v1-feedback"),
    path("", include("live.urls")),
]
