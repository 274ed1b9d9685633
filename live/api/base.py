"""What every API view shares: session auth, JSON bodies, refusals as JSON.

The one translation of ``Refusal`` for HTTP is ``ApiView.dispatch``: 404 for
``not_found``, 401 for ``unauthenticated``, 403 for ``forbidden``, 409 for
``nothing_to_undo``, 413 for ``too_large``, 415 for ``unsupported_type`` and
``mislabelled_type``, 400 otherwise.
"""

from __future__ import annotations

import json

from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View

from chat.refusals import Refusal

_STATUS = {
    "not_found": 404,
    "unauthenticated": 401,
    "forbidden": 403,
    "nothing_to_undo": 409,
    "too_large": 413,
    "unsupported_type": 415,
    "mislabelled_type": 415,
}


class ApiView(View):
    """A JSON endpoint: session auth, CSRF (by the middleware), refusals as JSON."""

    # protocol.md: refused feedback always names its field, null when none.
    always_name_field = False

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return refusal_response(Refusal("unauthenticated", "Log in first."))
        try:
            return super().dispatch(request, *args, **kwargs)
        except ObjectDoesNotExist:
            # Someone else's conversation answers exactly like a missing one.
            return refusal_response(Refusal("not_found", "No such conversation."))
        except Refusal as refusal:
            return refusal_response(refusal, name_field=self.always_name_field)


def refusal_response(refusal: Refusal, *, name_field: bool = False) -> JsonResponse:
    """``{"error": {...}}``: the refused fields, or code, message and field."""
    if refusal.fields is not None:
        body = {"code": refusal.code, "fields": refusal.fields}
    else:
        body = refusal.as_dict()
        if name_field:
            body.setdefault("field", None)
    return JsonResponse({"error": body}, status=_STATUS.get(refusal.code, 400))


def json_object(request: HttpRequest, *, refusal: Refusal, empty: dict | None = None) -> dict:
    """The request's JSON object body; ``empty`` stands for no body, if given."""
    if not request.body and empty is not None:
        return empty
    try:
        body = json.loads(request.body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise refusal
    return body
