"""The server-rendered pages: sign up, log in, log out and the chat app shell."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import iscoroutinefunction
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import reverse

from chat import services
from config.static import StaticFiles
from feedback.models import FeedbackProfile

pytestmark = pytest.mark.django_db


def signup_data(username: str = "carol") -> dict:
    return {
        "username": username,
        "password1": "a-long-Passphrase-9",
        "password2": "a-long-Passphrase-9",
    }


def test_it_signs_up_and_logs_in(client):
    """A valid sign-up creates the account, logs it in and opens the app."""
    response = client.post(reverse("signup"), signup_data())

    assert response.status_code == 302
    assert response.url == reverse("chat:index")
    user = get_user_model().objects.get(username="carol")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.get(reverse("chat:index")).status_code == 200


def test_it_shows_signup_errors_and_creates_nobody(client):
    data = {**signup_data(), "password2": "something-else-entirely"}

    response = client.post(reverse("signup"), data)

    assert response.status_code == 200
    assert b'data-testid="field-error-password2"' in response.content
    assert not get_user_model().objects.filter(username="carol").exists()


def test_it_sends_a_logged_in_user_from_signup_to_the_app(client, alice):
    client.force_login(alice)
    response = client.get(reverse("signup"))
    assert response.status_code == 302
    assert response.url == reverse("chat:index")


def test_it_logs_in_and_out(client, alice):
    """Log in with the form; log out only by POST."""
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 302
    assert response.url == reverse("chat:index")

    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert "_auth_user_id" not in client.session


def test_it_rejects_a_wrong_password(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("name", ["chat:index", "chat:conversation"])
def test_it_requires_login_for_the_app(client, alice, name):
    conversation = services.conversation_create(owner=alice)
    args = [conversation.pk] if name == "chat:conversation" else []
    url = reverse(name, args=args)

    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


def test_it_renders_the_app_shell_with_its_hooks(client, alice):
    """The shell carries the CSRF token, the client config and the test hooks."""
    client.force_login(alice)
    response = client.get(reverse("chat:index"))

    assert response.status_code == 200
    html = response.content.decode()
    for hook in ("composer", "send", "stop", "new-conversation", "menu-button", "status"):
        assert f'data-testid="{hook}"' in html
    assert 'name="csrf-token"' in html
    assert response.context["client_config"]["conversationId"] is None
    assert response.context["client_config"]["loginUrl"] == reverse("login")
    assert '<script id="client-config" type="application/json">' in html


def test_it_opens_an_own_conversation(client, alice):
    conversation = services.conversation_create(owner=alice)
    client.force_login(alice)

    response = client.get(reverse("chat:conversation", args=[conversation.pk]))

    assert response.status_code == 200
    assert response.context["client_config"]["conversationId"] == conversation.pk


def test_it_hides_another_users_conversation(client, alice, bob):
    """Bob gets a 404 for Alice's conversation, exactly as for a missing one."""
    conversation = services.conversation_create(owner=alice)
    client.force_login(bob)

    assert client.get(reverse("chat:conversation", args=[conversation.pk])).status_code == 404
    assert (
        client.get(reverse("chat:conversation", args=[conversation.pk + 1000])).status_code == 404
    )


def test_it_serves_the_vendored_libraries_with_their_licenses(client):
    """marked and DOMPurify ship with the app (no CDN) and keep their license headers."""
    for path, header in (
        ("vendor/marked.min.js", b"marked v"),
        ("vendor/purify.min.js", b"@license DOMPurify"),
    ):
        response = client.get(f"/static/{path}")
        assert response.status_code == 200
        assert header in b"".join(response.streaming_content)[:400]


async def test_static_files_are_served_on_the_async_stack_too(async_client):
    response = await async_client.get("/static/vendor/marked.min.js")
    assert response.status_code == 200
    assert b"marked v" in b"".join(response.streaming_content)[:400]
    missing = await async_client.get("/static/vendor/no-such-file.js")
    assert missing.status_code == 404


def test_the_static_middleware_leaves_other_requests_on_the_event_loop():
    """WhiteNoise's own middleware is sync only: each request (a streamed completion
    too) would hop to a thread and back for the view."""
    threads = []

    async def view(request):
        threads.append(threading.get_ident())
        return HttpResponse("ok")

    middleware = StaticFiles(view)
    assert iscoroutinefunction(middleware)

    async def request():
        response = await middleware(RequestFactory().get("/v1/models"))
        return response, threading.get_ident()

    response, loop_thread = asyncio.run(request())
    assert response.content == b"ok"
    assert threads == [loop_thread]


def test_the_chat_page_links_staff_tools_to_staff_and_the_arena_to_who_opted_in(
    client, alice, django_user_model
):
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert 'data-testid="sidebar-tools"' not in page
    FeedbackProfile.objects.create(user=alice, arena_opt_in=True)
    page = client.get("/").content.decode()
    assert 'data-testid="link-arena"' in page and 'data-testid="link-review"' not in page
    staff = django_user_model.objects.create_user("sue", password="sue-pw-1", is_staff=True)
    client.force_login(staff)
    page = client.get("/").content.decode()
    assert all(f'data-testid="link-{name}"' in page for name in ("review", "dashboard", "arena"))
