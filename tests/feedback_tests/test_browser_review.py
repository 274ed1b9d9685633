"""The review queue's focus view in real Chromium: a reviewer's day by keyboard alone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from chat import services as chat_services
from feedback import services
from feedback.models import Rating, ReviewAction
from tests.support.browsing import PASSWORD, log_in
from tests.support.factories import exchange

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(alice) -> list[Rating]:
    """Alice rated four replies; one has a sibling she rated the other way, with markup."""
    conversation = chat_services.conversation_create(owner=alice, title="Review me")
    _, (good, bad) = exchange(
        conversation, "Show `print` in **Python**", ["```python\nprint('hi')\n```", "<b>No</b>"]
    )
    services.rating_submit(user=alice, message_id=good.pk, value="up", reasons=["accurate"])
    services.rating_submit(
        user=alice, message_id=bad.pk, value="down", reasons=["wrong", "unhelpful"], comment="Meh"
    )
    for question in ("One?", "Two?"):
        _, (reply,) = exchange(conversation, question, [f"Answer to {question}"])
        services.rating_submit(user=alice, message_id=reply.pk, value="up")
    return list(Rating.objects.order_by("created_at", "id"))


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("rita", password=PASSWORD, is_staff=True)


def progress(page: Page, text: str) -> None:
    expect(page.get_by_test_id("review-progress")).to_have_text(text)


def test_a_reviewer_works_through_the_queue_by_keyboard(
    page: Page, live_server_url: str, queue, reviewer, page_events: dict
):
    log_in(page, live_server_url, "rita")
    page.goto(f"{live_server_url}/review/")
    progress(page, "1 of 4 pending")
    item = page.get_by_test_id("review-item")
    expect(page.get_by_test_id("review-reply").locator("pre code")).to_contain_text("print('hi')")
    expect(page.get_by_test_id("review-context")).to_contain_text("Show print in Python")
    expect(page.get_by_test_id("review-context").locator("strong")).to_have_text("Python")
    expect(page.get_by_test_id("review-sibling")).to_contain_text("<b>No</b>")  # text, not markup
    expect(page.get_by_test_id("review-sibling").locator("b")).to_have_count(0)
    expect(page.get_by_test_id("review-thumb")).to_have_text("Thumbs up")
    expect(page.get_by_test_id("review-reasons")).to_have_text("Accurate")

    page.keyboard.press("a")  # approve; on to the next
    progress(page, "1 of 3 pending")
    expect(page.get_by_test_id("review-reasons").locator("li")).to_have_text(["Wrong", "Unhelpful"])
    expect(page.get_by_test_id("review-comment")).to_have_text("Meh")
    expect(page.get_by_test_id("review-trust")).to_have_text("Not marked trusted")
    page.keyboard.press("x")  # exclude
    progress(page, "1 of 2 pending")
    page.keyboard.press("k")  # previous: back to the one just excluded
    expect(page.get_by_test_id("review-status")).to_have_text("Excluded")
    expect(page.get_by_test_id("review-progress")).to_contain_text("excluded by rita")
    page.keyboard.press("u")  # undo: it is pending again
    expect(page.get_by_test_id("review-status")).to_have_text("Pending")
    progress(page, "1 of 3 pending")
    page.keyboard.press("ArrowRight")  # next without deciding
    expect(page.get_by_test_id("review-reply")).to_contain_text("Answer to One?")
    progress(page, "2 of 3 pending")
    page.keyboard.press("a")
    progress(page, "2 of 2 pending")

    statuses = dict(Rating.objects.values_list("pk", "status"))
    assert [statuses[r.pk] for r in queue] == ["approved", "pending", "approved", "pending"]
    assert Rating.objects.get(pk=queue[0].pk).reviewed_by == reviewer
    actions = ReviewAction.objects.filter(reviewer=reviewer).order_by("id")
    assert [(a.status, a.undone_at is not None) for a in actions] == [
        ("approved", False),
        ("excluded", True),  # the undone decision stays in the audit trail
        ("approved", False),
    ]

    page.reload()  # decisions and the undo history survive a reload
    progress(page, "1 of 2 pending")
    page.keyboard.press("u")  # undoes the last approval, made before the reload
    expect(page.get_by_test_id("review-reply")).to_contain_text("Answer to One?")
    expect(page.get_by_test_id("review-status")).to_have_text("Pending")
    progress(page, "2 of 3 pending")
    expect(item).to_be_visible()
    assert page_events["errors"] == []


def test_a_non_staff_user_is_sent_to_log_in(page: Page, live_server_url: str, alice):
    alice.set_password(PASSWORD)
    alice.save()
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/review/")
    expect(page).to_have_url(f"{live_server_url}/admin/login/?next=/review/")
