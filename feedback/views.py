"""The feedback HTTP API of docs/protocol.md and the account settings page.

Each API method parses, calls one service or selector and shapes the answer;
a refused request answers 400 with the websocket's error codes, a reply that
is missing or someone else's answers 404.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from chat.views import ApiView
from feedback import selectors, services
from feedback.models import FeedbackProfile
from feedback.services import FeedbackError

# -- JSON API -------------------------------------------------------------------


class FeedbackApiView(ApiView):
    """An API view whose refusals are ``FeedbackError``s."""

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return super().dispatch(request, *args, **kwargs)
        except FeedbackError as error:
            status = 404 if error.code == "not_found" else 400
            body = {"code": error.code, "message": error.message, "field": error.field}
            return JsonResponse({"error": body}, status=status)


class RatingApi(FeedbackApiView):
    def put(self, request: HttpRequest, message_id: str) -> JsonResponse:
        body = _json_object(request)
        if body.get("value") is None:
            # Clearing is DELETE: a PUT that forgot its value must not wipe a rating.
            raise FeedbackError("invalid", 'value must be "up" or "down".', "value")
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


class ProfileApi(FeedbackApiView):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse(_profile_data(selectors.profile_get(user=request.user)))

    def patch(self, request: HttpRequest) -> JsonResponse:
        body = _json_object(request)
        profile = services.profile_update(
            user=request.user, share_for_training=body.get("share_for_training")
        )
        return JsonResponse(_profile_data(profile))


def _json_object(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise FeedbackError("bad_json", "The request body must be a JSON object.")
    return body


def _message_id(text: str) -> int | str:
    """The path's id as an integer; anything else goes on for the service to refuse."""
    return int(text) if text.isascii() and text.isdigit() else text


def _profile_data(profile: FeedbackProfile) -> dict:
    return {"share_for_training": profile.share_for_training}


# -- pages ----------------------------------------------------------------------


class ProfileForm(forms.Form):
    share_for_training = forms.BooleanField(required=False)


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    """The account settings: whether feedback may be used for training."""
    if request.method == "POST":
        form = ProfileForm(request.POST)
        form.is_valid()  # A lone optional checkbox is always valid.
        profile = services.profile_update(
            user=request.user, share_for_training=form.cleaned_data["share_for_training"]
        )
        messages.success(request, _saved_message(profile.share_for_training))
        return redirect("feedback:settings")
    profile = selectors.profile_get(user=request.user)
    return render(request, "feedback/settings.html", {"profile": profile})


def _saved_message(share_for_training: bool) -> str:
    if share_for_training:
        return "Saved. Replies you rate may be used to improve the model."
    return "Saved. None of your feedback will be used to improve the model."
