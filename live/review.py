"""Staff review, one rating at a time: the focus page and its JSON API (docs/protocol.md).

Staff only: the page sends anyone else to the log-in page, the API answers
403 ``forbidden``. Bulk review (filters, search, actions over many) stays in
the admin's changelist, linked from the page.
"""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from chat.refusals import Refusal
from feedback import review
from feedback.models import Rating
from live.api.base import ApiView, json_object, refusal_response


@staff_member_required
def queue_page(request: HttpRequest) -> HttpResponse:
    config = {
        "api": reverse("review:api-next").rsplit("next", 1)[0],
        "bulkUrl": reverse("admin:feedback_rating_changelist") + "?status__exact=pending",
        "filter": {
            "value": request.GET.get("value", ""),
            "model_version": request.GET.get("model_version", ""),
        },
        "start": request.GET.get("rating"),
    }
    return render(request, "review/queue.html", {"client_config": config})


class StaffApiView(ApiView):
    """An API view for staff: anyone else is answered 403 before any work."""

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.user.is_authenticated and not request.user.is_staff:
            return refusal_response(Refusal("forbidden", "Staff only."))
        return super().dispatch(request, *args, **kwargs)


class QueueNextApi(StaffApiView):
    def get(self, request: HttpRequest) -> JsonResponse:
        queue = _queue(request)
        rating = review.queue_next(queue=queue, after_id=_optional_id(request.GET.get("after")))
        return _answer(queue, rating)


class RatingReviewApi(StaffApiView):
    def get(self, request: HttpRequest, rating_id: int) -> JsonResponse:
        queue = _queue(request)
        return _answer(queue, Rating.objects.filter(pk=rating_id).first(), missing_ok=False)

    def post(self, request: HttpRequest, rating_id: int) -> JsonResponse:
        body = json_object(
            request, refusal=Refusal("bad_json", "The request body must be a JSON object.")
        )
        rating = review.rating_decide(
            rating_id=rating_id, reviewer=request.user, status=body.get("status")
        )
        return _answer(_queue(request), rating)


class UndoApi(StaffApiView):
    def post(self, request: HttpRequest) -> JsonResponse:
        rating = review.review_undo(reviewer=request.user)
        return _answer(_queue(request), rating)


def _queue(request: HttpRequest) -> review.QueueFilter:
    return review.QueueFilter.parse(
        value=request.GET.get("value", ""), model_version=request.GET.get("model_version", "")
    )


def _answer(queue: review.QueueFilter, rating: Rating | None, *, missing_ok=True) -> JsonResponse:
    """``{"item": ..., "pending": N, "position": k}``; item null when the queue is empty."""
    if rating is None and not missing_ok:
        raise Refusal("not_found", "No such rating (it may have been withdrawn).", "rating")
    item = None if rating is None else review.review_item(rating_id=rating.pk)
    return JsonResponse({"item": item, **review.queue_progress(queue=queue, rating=rating)})


def _optional_id(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise Refusal("invalid", "after must be a rating id.", "after")
    return int(text)
