"""The arena page: ask once, read two anonymous replies side by side, vote.

Replies stream over the chat websocket (``arena`` and ``arena_vote`` frames,
docs/protocol.md). Staff may choose the two versions (any status) on the page;
nothing is promoted by it. The leaderboard is rendered here, so it reads without
JavaScript, and it is also served as JSON.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from live.api.base import ApiView
from training import arena
from training.bradley_terry import MIN_VOTES


@login_required
def arena_page(request: HttpRequest) -> HttpResponse:
    allowed = arena.arena_allowed(user=request.user)
    context = {
        "section": "arena",
        "allowed": allowed,
        "leaderboard": arena.leaderboard(),
        "min_votes": MIN_VOTES,
        "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        # Staff compare any two versions; everyone else gets the arena's pick.
        "choices": arena.arena_choices() if allowed and request.user.is_staff else [],
        "client_config": {"socketPath": "/ws/chat/"},
    }
    return render(request, "arena/arena.html", context, status=200 if allowed else 403)


class LeaderboardApi(ApiView):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"leaderboard": arena.leaderboard()})
