"""The review queue's focus view in real Chromium: a reviewer's day by keyboard alone."""

from __future__ import annotations

import datetime

import pytest
from playwright.sync_api import Page, expect

from chat import services as chat_services
from feedback import services
from feedback.models import Rating, ReviewAction
from tests.support.browsing import PASSWORD, log_in, serious_violations
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


def test_staff_pages_send_visitors_to_loopchat_log_in_and_users_to_a_staff_only_page(
    browser, live_server_url: str, alice, reviewer
):
    """Not logged in: LoopChat's /login/, then back. Logged in, not staff: a 403
    page that says so, not the Django admin's log-in form."""
    # bypass_csp: the page's own policy would refuse the injected axe script.
    page = browser.new_context(bypass_csp=True).new_page()
    for path in ("/review/", "/review/dashboard/"):
        page.goto(f"{live_server_url}{path}")
        expect(page).to_have_url(f"{live_server_url}/login/?next={path}")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.locator("form [type=submit]").click()
    expect(page).to_have_url(f"{live_server_url}/review/dashboard/")
    page.context.clear_cookies()

    alice.set_password(PASSWORD)
    alice.save()
    log_in(page, live_server_url, "alice")
    for path in ("/review/", "/review/dashboard/"):
        response = page.goto(f"{live_server_url}{path}")
        assert response.status == 403
        expect(page).to_have_url(f"{live_server_url}{path}")
        expect(page.get_by_test_id("staff-only")).to_have_text("For staff only")
        expect(page.get_by_role("link", name="Back to your chats")).to_be_visible()
        assert serious_violations(page) == []


def test_on_a_phone_the_reply_under_review_is_in_view_and_the_actions_fit_one_row(
    browser, live_server_url: str, queue, reviewer
):
    """At 390 x 844 the rated reply shows on the first screen, above the sticky action
    bar, which is one row; the time reads in UTC, labelled, as on the dashboard."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = context.new_page()
    log_in(page, live_server_url, "rita")
    page.goto(f"{live_server_url}/review/")
    progress(page, "1 of 4 pending")
    reply = page.get_by_test_id("review-reply")
    expect(reply).to_be_in_viewport()
    bar = page.get_by_role("toolbar", name="Review actions").bounding_box()
    assert bar["height"] < 60, bar  # one row of buttons
    tops = {round(b.bounding_box()["y"]) for b in page.locator("[data-action]").all()}
    assert len(tops) == 1, tops
    reply_box = reply.bounding_box()
    assert reply_box["y"] + 60 < bar["y"], (
        reply_box,
        bar,
    )  # its heading and first line clear the bar
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.get_by_test_id("review-filters")).to_be_hidden()  # folded on a phone
    page.get_by_test_id("review-filters-summary").click()
    expect(page.get_by_test_id("filter-kind")).to_be_visible()

    created = queue[0].created_at.astimezone(datetime.UTC)
    expect(page.get_by_test_id("review-created")).to_have_text(f"{created:%Y-%m-%d %H:%M} UTC")
    assert serious_violations(page) == []
    context.close()
