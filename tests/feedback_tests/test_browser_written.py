"""“Write a better reply” and its review in real Chromium, at 1280 px and at 390 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from chat import services as chat_services
from chat.models import Message
from feedback import services
from feedback.models import PreferencePair, ReviewAction
from feedback.written import written_reply_submit
from tests.chat_tests.test_browser import REPLY, send, sign_up
from tests.feedback_tests.test_browser import announced, finished_reply
from tests.support.browsing import PASSWORD, log_in, serious_violations
from tests.support.factories import exchange

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def page(browser, page_events: dict):
    """The conftest's page, with CSP bypassed so that axe-core can be injected."""
    context = browser.new_context(viewport=VIEWPORTS["desktop"], bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda error: page_events["errors"].append(str(error)))
    page.on(
        "dialog", lambda dialog: (page_events["dialogs"].append(dialog.message), dialog.dismiss())
    )
    yield page
    context.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_user_writes_the_reply_they_wanted_under_a_thumbs_down(
    page: Page, live_server_url: str, page_events: dict, viewport: str
):
    page.set_viewport_size(VIEWPORTS[viewport])
    sign_up(page, live_server_url, f"kim-{viewport}")
    send(page, "What is the capital of France?")
    rated_id = finished_reply(page)
    write = page.get_by_test_id("write-better")
    expect(write).to_be_hidden()  # only under a thumbs-down

    page.get_by_test_id("thumb-down").click()
    announced(page, "Rated down")
    page.get_by_test_id("feedback-dismiss").click()
    expect(write).to_have_text("Write a better reply")
    write.click()
    editor = page.get_by_test_id("write-text")
    expect(editor).to_be_focused()
    # It starts from the model's text, as stored.
    expect(editor).to_have_value(Message.objects.get(pk=rated_id).content)
    count = page.get_by_test_id("write-count")
    expect(count).to_contain_text("/ 8000 characters")
    editor.fill("")
    expect(page.get_by_test_id("write-save")).to_be_disabled()  # nothing to save
    editor.fill("x" * 8001)
    expect(count).to_contain_text("1 too many")
    expect(page.get_by_test_id("write-save")).to_be_disabled()
    editor.fill("The capital of France is **Paris**.")
    expect(count).to_have_text("35 / 8000 characters")
    assert serious_violations(page) == []  # the chat page with the editor open
    page.get_by_test_id("write-save").click()
    announced(page, "Your reply was saved")

    shown = page.locator(REPLY)
    expect(shown).to_have_attribute("data-written-by", "user")
    expect(shown.get_by_test_id("written-badge")).to_have_text("Written by you")
    expect(shown.locator("strong")).to_have_text("Paris")
    expect(shown.get_by_test_id("sibling-index")).to_have_text("2/2")
    expect(shown.get_by_test_id("thumb-down")).to_be_hidden()  # not rated
    expect(page.get_by_test_id("write-form")).to_have_count(0)
    written = Message.objects.get(written_by_user=True)
    assert (written.parent_id, written.model_version) == (
        Message.objects.get(pk=rated_id).parent_id,
        "",
    )
    pair = PreferencePair.objects.get()
    assert (pair.chosen, pair.rejected_id, pair.source, pair.status) == (
        written,
        int(rated_id),
        "written",
        "pending",
    )

    page.reload()  # the sibling and its label come back; the rated reply offers an edit
    expect(shown.get_by_test_id("written-badge")).to_be_visible()
    shown.get_by_test_id("sibling-prev").click()
    expect(shown).to_have_attribute("data-message-id", rated_id)
    expect(shown.get_by_test_id("written-badge")).to_be_hidden()
    expect(write).to_have_text("Edit your better reply")
    write.click()
    expect(page.get_by_test_id("write-text")).to_have_value("The capital of France is **Paris**.")
    page.get_by_test_id("write-cancel").click()
    expect(page.get_by_test_id("write-form")).to_have_count(0)
    expect(write).to_be_focused()
    assert Message.objects.filter(written_by_user=True).count() == 1
    assert page_events == {"errors": [], "dialogs": []}


@pytest.fixture
def written_pair(alice) -> PreferencePair:
    conversation = chat_services.conversation_create(owner=alice, title="Capitals")
    _, (lyon,) = exchange(conversation, "Capital of France?", ["It is Lyon."])
    services.rating_submit(user=alice, message_id=lyon.pk, value="down", reasons=["wrong"])
    return written_reply_submit(user=alice, message_id=lyon.pk, content="It is **Paris**.").pair


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_reviewer_sees_a_written_pair_side_by_side_and_decides_by_keyboard(
    page: Page,
    live_server_url: str,
    written_pair,
    django_user_model,
    page_events: dict,
    viewport: str,
):
    rita = django_user_model.objects.create_user("rita", password=PASSWORD, is_staff=True)
    page.set_viewport_size(VIEWPORTS[viewport])
    log_in(page, live_server_url, "rita")
    page.goto(f"{live_server_url}/review/?kind=pairs")
    progress = page.get_by_test_id("review-progress")
    expect(progress).to_have_text("1 of 1 pending")
    expect(page.get_by_test_id("filter-kind")).to_have_value("pairs")
    expect(page.get_by_test_id("review-pair-source")).to_have_text("Written by the user")
    chosen, rejected = page.get_by_test_id("review-chosen"), page.get_by_test_id("review-rejected")
    expect(chosen).to_contain_text("Chosen: written by the user")
    expect(chosen.locator("strong")).to_have_text("Paris")
    expect(rejected).to_contain_text("It is Lyon.")
    expect(rejected).to_contain_text("rated thumbs down: Wrong")
    expect(page.get_by_test_id("review-context")).to_contain_text("Capital of France?")
    left, right = chosen.bounding_box(), rejected.bounding_box()
    if viewport == "desktop":
        assert abs(left["y"] - right["y"]) < 2 and left["x"] < right["x"]  # side by side
    else:
        assert right["y"] >= left["y"] + left["height"]  # stacked on a phone
        assert right["x"] + right["width"] <= 390
    assert serious_violations(page) == []

    page.keyboard.press("a")
    expect(progress).to_have_text("0 pending")
    written_pair.refresh_from_db()
    assert (written_pair.status, written_pair.reviewed_by) == ("approved", rita)
    page.keyboard.press("u")
    expect(page.get_by_test_id("review-status")).to_have_text("Pending")
    expect(progress).to_have_text("1 of 1 pending")
    page.keyboard.press("x")
    expect(progress).to_have_text("0 pending")
    actions = ReviewAction.objects.filter(pair=written_pair).order_by("id")
    assert [(a.status, a.undone_at is not None) for a in actions] == [
        ("approved", True),
        ("excluded", False),
    ]
    assert page_events["errors"] == []
