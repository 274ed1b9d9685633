from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from live.metrics.exposition import metrics_view


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("live.urls")),
]
