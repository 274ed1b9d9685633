"""Pages for staff only: who else opens one is told so by LoopChat, not the admin.

Someone not logged in goes to LoopChat's own log-in page and comes back after;
a logged-in user who is not staff gets a 403 page that says the page is for
staff and where to go instead. (Django's ``staff_member_required`` sends both
to the admin's log-in form.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            return render(request, "staff_only.html", status=403)
        return view(request, *args, **kwargs)

    return wrapped
