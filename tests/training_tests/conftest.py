"""Shared fixtures for the retraining tests."""

from __future__ import annotations

import pytest

from chat import services as chat_services
from feedback import services as feedback_services
from feedback.models import Rating
from tests.chat_tests.conftest import (  # noqa: F401  (browser fixtures and hook, shared)
    browser,
    page,
    page_events,
    pytest_runtest_makereport,
)
from tests.feedback_tests.conftest import live_server_url  # noqa: F401  (short replies)
from tests.support.factories import exchange

QUESTIONS = [f"Tell me about topic number {index}." for index in range(10)]


@pytest.fixture
def feedback(alice, bob):
    """Ten conversations, each with a preferred and a rejected sibling, approved."""
    for question in QUESTIONS:
        conversation = chat_services.conversation_create(owner=alice)
        _, (good, bad) = exchange(conversation, question, ["Sure. Have a great day!", "No."])
        feedback_services.rating_submit(user=alice, message_id=good.pk, value="up")
        feedback_services.rating_submit(user=alice, message_id=bad.pk, value="down")
    feedback_services.ratings_review(ratings=Rating.objects.all(), reviewer=bob, status="approved")
