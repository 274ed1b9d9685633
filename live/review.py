"""Staff review, one rating or pair at a time: the focus page and its JSON API
(docs/protocol.md).

Staff only: the page sends anyone not logged in to LoopChat's log-in page and
answers other users with a 403 page (live/staff.py); the API answers
403 ``forbidden``. Bulk review (filters, search, actions over many) stays in
the admin's changelist, linked from the page.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from chat.refusals import Refusal
from feedback import review
from feedback.models import PreferencePair
from live.api.base import ApiView, json_object, refusal_response
from live.staff import staff_required

FILTERS = ("kind", "value", "source", "model_version")


@staff_required
def queue_page(request: HttpRequest) -> HttpResponse:
    config = {
        "api": reverse("review:api-next").rsplit("next", 1)[0],
        "bulkUrls": {
            "rating": reverse("admin:feedback_rating_changelist") + "?status__exact=pending",
            "pair": reverse("admin:feedback_preferencepair_changelist") + "?status__exact=pending",
        },
        "filter": {name: request.GET.get(name, "") for name in FILTERS},
        "start": _start(request),
    }
    context = {"client_config": config, "sources": PreferencePair.Source.choices}
    return render(request, "review/queue.html", context)


class StaffApiView(ApiView):
    """An API view for staff: anyone else is answered 403 before any work."""

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.user.is_authenticated and not request.user.is_staff:
            return refusal_response(Refusal("forbidden", "Staff only."))
        return super().dispatch(request, *args, **kwargs)


class QueueNextApi(StaffApiView):
    def get(self, request: HttpRequest) -> JsonResponse:
        queue = _queue(request)
        after = request.GET.get("after")
        item = review.queue_next(queue=queue, after=review.ItemRef.parse(after) if after else None)
        return _answer(queue, item)


class ItemReviewApi(StaffApiView):
    """One rating (``kind`` "rating") or pair ("pair"): read it, or decide it."""

    kind = "rating"

    def get(self, request: HttpRequest, item_id: int) -> JsonResponse:
        ref = review.ItemRef(self.kind, item_id)
        item = review.item_get(ref=ref)
        if item is None:
            raise Refusal(
                "not_found", f"No such {self.kind} (it may have been withdrawn).", self.kind
            )
        return _answer(_queue(request), item)

    def post(self, request: HttpRequest, item_id: int) -> JsonResponse:
        body = json_object(
            request, refusal=Refusal("bad_json", "The request body must be a JSON object.")
        )
        decide = review.pair_decide if self.kind == "pair" else review.rating_decide
        item = decide(
            **{f"{self.kind}_id": item_id}, reviewer=request.user, status=body.get("status")
        )
        return _answer(_queue(request), item)


class UndoApi(StaffApiView):
    def post(self, request: HttpRequest) -> JsonResponse:
        item = review.review_undo(reviewer=request.user)
        return _answer(_queue(request), item)


def _queue(request: HttpRequest) -> review.QueueFilter:
    return review.QueueFilter.parse(**{name: request.GET.get(name, "") for name in FILTERS})


def _answer(queue: review.QueueFilter, item: review.Item | None) -> JsonResponse:
    """``{"item": ..., "pending": N, "position": k}``; item null when the queue is empty."""
    shown = None if item is None else review.queue_item(item=item)
    return JsonResponse({"item": shown, **review.queue_progress(queue=queue, item=item)})


def _start(request: HttpRequest) -> dict | None:
    """The item the page opens on: ``?rating=ID`` or ``?pair=ID`` (links from the admin)."""
    for kind in review.KINDS:
        text = request.GET.get(kind, "")
        if text.isascii() and text.isdigit():
            return {"kind": kind, "id": int(text)}
    return None
