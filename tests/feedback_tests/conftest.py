"""Feedback fixtures: alice's conversation with finished replies, logged-in clients,
and for the browser tests a Uvicorn server whose replies are a few tokens long."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from chat import services as chat_services
from chat.models import Conversation, Message
from tests.chat_tests.conftest import (  # noqa: F401  (fixtures and hook, shared)
    browser,
    page,
    page_events,
    pytest_runtest_makereport,
)
from tests.support.factories import exchange
from tests.support.servers import app_env, asgi_server


@pytest.fixture
def conversation(alice) -> Conversation:
    return chat_services.conversation_create(owner=alice, title="Capitals")


@pytest.fixture
def replies(conversation) -> list[Message]:
    """Three finished sibling replies to one question of alice's."""
    return exchange(conversation, "Capital of France?", ["Paris.", "Lyon.", "Marseille."])[1]


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture(scope="module")
def live_server_url(
    django_db_setup: None, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Uvicorn serving the whole app against the test database, the tiny model loaded.

    Replies stop after a few tokens: feedback tests wait for finished replies.
    Tests that use it need ``transactional_db`` so the server sees their rows.
    """
    env = app_env(tiny_model_dir, CHAT_DEFAULT_MAX_NEW_TOKENS="8")
    log = tmp_path_factory.mktemp("server") / "server.log"
    with asgi_server(env, log) as url:
        yield url


@pytest.fixture
def carol(django_user_model):
    """Staff: a superuser who reviews feedback."""
    return django_user_model.objects.create_superuser("carol", password="carol-password-1")


@pytest.fixture
def staff_client(client, carol) -> Client:
    client.force_login(carol)
    return client
