"""Feedback over HTTP: rate or clear a reply, prefer a sibling, write a better reply,
the training opt-out.

A refused request answers 400 with the websocket's error codes; a reply that
is missing or someone else's answers 404.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from chat.refusals import Refusal
from chat.serializers import message_data
from feedback import selectors, services
from feedback.models import FeedbackProfile
from feedback.written import written_reply_submit
from live.api.base import ApiView, json_object


class FeedbackApiView(ApiView):
    always_name_field = True


class RatingApi(FeedbackApiView):
    def put(self, request: HttpRequest, message_id: str) -> JsonResponse:
        body = _body(request)
        if body.get("value") is None:
            # Clearing is DELETE: a PUT that forgot its value must not wipe a rating.
            raise Refusal("invalid", 'value must be "up" or "down".', "value")
        rating = services.rating_submit(
            user=request.user,
            message_id=_message_id(message_id),
            value=body["value"],
            reasons=body.get("reasons"),
            comment=body.get("comment"),
        )
        return JsonResponse({"rating": selectors.rating_data(rating)})

    def delete(self, request: HttpRequest, message_id: str) -> HttpResponse:
        services.rating_submit(user=request.user, message_id=_message_id(message_id), value=None)
        return HttpResponse(status=204)


class PreferenceApi(FeedbackApiView):
    def post(self, request: HttpRequest, message_id: str) -> JsonResponse:
        chosen_id = _message_id(message_id)
        pairs = services.preference_submit(user=request.user, chosen_id=chosen_id)
        rejected = [pair.rejected_id for pair in pairs]
        return JsonResponse({"chosen": chosen_id, "rejected": rejected}, status=201)


class WrittenReplyApi(FeedbackApiView):
    def put(self, request: HttpRequest, message_id: str) -> JsonResponse:
        """The reply the user wanted instead of this thumbs-down one: 201 when new,
        200 when it rewrote their earlier one (one per rated reply)."""
        written = written_reply_submit(
            user=request.user,
            message_id=_message_id(message_id),
            content=_body(request).get("content"),
        )
        body = {
            "reply": message_data(written.reply),
            "pair": selectors.written_pair_data(written.pair),
        }
        return JsonResponse(body, status=201 if written.created else 200)


class ProfileApi(FeedbackApiView):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(_profile_data(selectors.profile_get(user=request.user)))

    def patch(self, request: HttpRequest) -> JsonResponse:
        body = _body(request)
        if not {"share_for_training", "arena_opt_in"} & body.keys():
            raise Refusal(
                "invalid", "Send share_for_training or arena_opt_in.", "share_for_training"
            )
        current = selectors.profile_get(user=request.user)
        profile = services.profile_update(
            user=request.user,
            share_for_training=body.get("share_for_training", current.share_for_training),
            arena_opt_in=body.get("arena_opt_in", current.arena_opt_in),
        )
        return JsonResponse(_profile_data(profile))


def _body(request: HttpRequest) -> dict:
    refusal = Refusal("bad_json", "The request body must be a JSON object.")
    return json_object(request, refusal=refusal)


def _message_id(text: str) -> int | str:
    """The path's id as an integer; anything else goes on for the service to refuse."""
    return int(text) if text.isascii() and text.isdigit() else text


def _profile_data(profile: FeedbackProfile) -> dict:
    return {
        "share_for_training": profile.share_for_training,
        "arena_opt_in": profile.arena_opt_in,
    }
