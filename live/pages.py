"""Pages: sign up, log out, the chat app shell, the document library, the account settings.

The server renders only the shell; static/js/ drives the rest through the
JSON API (live.api) and the websocket (live.consumers).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from chat import keys, selectors
from chat.models import Conversation
from chat.refusals import Refusal
from feedback import selectors as feedback_selectors
from feedback import services as feedback_services
from feedback.selectors import reason_choices
from feedback.services import MAX_COMMENT_CHARS
from live.forms import ProfileForm, SignupForm
from training import arena


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("chat:index")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save())
        return redirect("chat:index")
    return render(request, "registration/signup.html", {"form": form})


@never_cache
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Log out (POST only, CSRF-checked) and say so on the page it lands on."""
    auth_logout(request)
    messages.success(request, "You have been logged out.")
    return redirect(settings.LOGOUT_REDIRECT_URL)


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


@login_required
def documents_page(request: HttpRequest) -> HttpResponse:
    """The user's library: documents every conversation may search (static/js/library.js)."""
    context = {"max_upload_bytes": settings.DOCUMENTS_MAX_UPLOAD_BYTES}
    return render(request, "documents/library.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    """The account settings: whether feedback may be used for training."""
    if request.method == "POST":
        form = ProfileForm(request.POST)
        form.is_valid()  # Optional checkboxes are always valid.
        profile = feedback_services.profile_update(
            user=request.user,
            share_for_training=form.cleaned_data["share_for_training"],
            arena_opt_in=form.cleaned_data["arena_opt_in"],
        )
        messages.success(request, _saved_message(profile.share_for_training))
        return redirect("feedback:settings")
    # A key created just before is shown on this one page view, then forgotten.
    return _settings_render(request, new_key=request.session.pop(_NEW_KEY, None))


# The session entry that carries a new key's secret from its POST to the next page.
_NEW_KEY = "api_key_new"


@login_required
@require_POST
def api_key_create(request: HttpRequest) -> HttpResponse:
    """A new API key, shown on the settings page this once (only its hash is kept)."""
    try:
        created = keys.api_key_create(owner=request.user, name=request.POST.get("name", ""))
    except Refusal as refusal:
        return _settings_render(request, key_error=refusal.message, status=400)
    # Post/redirect/get: reloading the page must neither create another key nor show it again.
    request.session[_NEW_KEY] = created.secret
    return redirect("feedback:settings")


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        revoked = keys.api_key_revoke(owner=request.user, key_id=key_id)
    except Refusal:
        raise Http404("No such key.") from None
    messages.success(request, f"The key {revoked.prefix}… is revoked: apps using it are refused.")
    return redirect("feedback:settings")


def _settings_render(request: HttpRequest, status: int = 200, **context: object) -> HttpResponse:
    context = {
        "profile": feedback_selectors.profile_get(user=request.user),
        "api_keys": keys.api_key_list(owner=request.user),
        **context,
    }
    response = render(request, "feedback/settings.html", context, status=status)
    # A page showing a new key is never stored by the browser or a proxy.
    response["Cache-Control"] = "no-store"
    return response


def _app_page(request: HttpRequest, *, conversation_id: int | None) -> HttpResponse:
    client_config = {
        "conversationId": conversation_id,
        "maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS,
        "loginUrl": resolve_url(settings.LOGIN_URL),
        "feedback": _feedback_config(),
        # Staff see each reply's model version and token figures without asking.
        "isStaff": request.user.is_staff,
        # What the settings dialog shows in an empty chat (conversation_create's values).
        "conversationDefaults": {
            "title": "",
            "system_prompt": settings.CHAT_DEFAULT_SYSTEM_PROMPT,
            "temperature": settings.CHAT_DEFAULT_TEMPERATURE,
            "top_p": settings.CHAT_DEFAULT_TOP_P,
            "max_new_tokens": settings.CHAT_DEFAULT_MAX_NEW_TOKENS,
        },
    }
    context = {
        "client_config": client_config,
        "arena_open": arena.arena_allowed(user=request.user),
    }
    return render(request, "chat/app.html", context)


def _feedback_config() -> dict:
    """The preset reasons for each thumb (key -> label, in order) and the comment limit."""
    choices = reason_choices()
    return {
        "reasons": {"up": choices["up"], "down": choices["down"]},
        # Reasons about sources, offered only under a grounded reply.
        "groundedOnlyReasons": choices["grounded_only"],
        "maxCommentChars": MAX_COMMENT_CHARS,
    }


def _saved_message(share_for_training: bool) -> str:
    if share_for_training:
        return "Saved. Replies you rate may be used to improve the model."
    return "Saved. None of your feedback will be used to improve the model."
