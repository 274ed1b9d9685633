"""Feedback in real headless Chromium against a real Uvicorn server and the tiny model."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from chat.models import Message
from feedback.models import FeedbackProfile, PreferencePair, Rating
from tests.chat_tests.test_browser import REPLY, send, sign_up
from tests.support.browsing import serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def finished_reply(page: Page) -> str:
    """Wait until the shown reply is complete; its id."""
    reply = page.locator(REPLY)
    expect(reply).to_have_attribute("data-status", "complete")
    return reply.get_attribute("data-message-id")


def announced(page: Page, text: str) -> None:
    """The live region said it: the server has answered the frame."""
    expect(page.get_by_test_id("announcer")).to_have_text(text)


def test_it_rates_a_reply_with_reasons_and_shows_it_after_reload(
    page: Page, live_server_url: str, page_events: dict
):
    """Thumbs down, two reasons and a comment reach the database and come back on reload."""
    sign_up(page, live_server_url, "hana")
    send(page, "What is the capital of France?")
    reply_id = finished_reply(page)
    up, down = page.get_by_test_id("thumb-up"), page.get_by_test_id("thumb-down")
    expect(up).to_have_attribute("aria-label", "Good reply")

    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    announced(page, "Rated down")
    form = page.get_by_test_id("feedback-form")
    expect(form).to_be_visible()
    expect(page.get_by_test_id("reason-helpful")).to_have_count(0)  # up's reasons only on up
    expect(page.get_by_test_id("reason-unsupported")).to_have_count(0)  # a plain reply's
    page.keyboard.press("Tab")  # The form comes right after the thumbs.
    expect(page.get_by_test_id("reason-wrong")).to_be_focused()
    page.keyboard.press("Space")
    page.get_by_test_id("reason-too_long").check()
    page.get_by_test_id("feedback-comment").fill("It said Lyon.")
    page.get_by_test_id("feedback-submit").click()
    expect(form).to_have_count(0)
    announced(page, "Thanks, your feedback was sent")
    expect(down).to_be_focused()

    rating = Rating.objects.get()
    assert (rating.message_id, rating.value) == (int(reply_id), -1)
    assert (rating.reasons, rating.comment) == (["wrong", "too_long"], "It said Lyon.")

    page.reload()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    summary = page.get_by_test_id("feedback-summary")
    expect(summary).to_contain_text("Wrong, Too long · “It said Lyon.”")
    page.get_by_test_id("feedback-edit").click()
    expect(page.get_by_test_id("reason-wrong")).to_be_checked()
    expect(page.get_by_test_id("reason-unhelpful")).not_to_be_checked()
    expect(page.get_by_test_id("feedback-comment")).to_have_value("It said Lyon.")
    page.keyboard.press("Escape")  # Escape closes the form, focus goes back to the thumb.
    expect(form).to_have_count(0)
    expect(down).to_be_focused()

    up.click()  # The other thumb switches: a new rating, its reasons start empty.
    announced(page, "Rated up")
    expect(page.get_by_test_id("reason-helpful")).to_be_visible()
    assert (Rating.objects.get().value, Rating.objects.get().reasons) == (1, [])
    up.click()  # A second press on the same thumb clears.
    announced(page, "Rating removed")
    expect(up).to_have_attribute("aria-pressed", "false")
    expect(form).to_have_count(0)
    assert not Rating.objects.exists()
    assert page_events == {"errors": [], "dialogs": []}


def test_it_marks_the_better_of_two_replies(page: Page, live_server_url: str, page_events: dict):
    """After a regeneration "This one is better" records the choice; reload shows the badge."""
    sign_up(page, live_server_url, "ivan")
    send(page, "Name a colour.")
    first_id = finished_reply(page)
    expect(page.get_by_test_id("prefer")).to_be_hidden()  # No sibling yet.

    page.locator(f'{REPLY} [data-testid="regenerate"]').click()
    sibling_index = page.locator(f'{REPLY} [data-testid="sibling-index"]')
    expect(sibling_index).to_have_text("2/2")
    second_id = finished_reply(page)
    page.get_by_test_id("prefer").click()
    announced(page, "Marked as the better reply")
    expect(page.get_by_test_id("preferred-badge")).to_be_visible()
    expect(page.get_by_test_id("prefer")).to_be_hidden()

    pair = PreferencePair.objects.get()
    assert (pair.chosen_id, pair.rejected_id) == (int(second_id), int(first_id))
    assert pair.source == PreferencePair.Source.EXPLICIT

    page.reload()
    expect(sibling_index).to_have_text("2/2")
    expect(page.get_by_test_id("preferred-badge")).to_be_visible()
    page.locator(f'{REPLY} [data-testid="sibling-prev"]').click()
    expect(page.locator(REPLY)).to_have_attribute("data-message-id", first_id)
    expect(page.get_by_test_id("preferred-badge")).to_be_hidden()
    expect(page.get_by_test_id("prefer")).to_be_visible()
    assert Message.objects.filter(role=Message.Role.ASSISTANT).count() == 2
    assert page_events == {"errors": [], "dialogs": []}


def test_the_sharing_toggle_is_on_by_default_and_persists(page: Page, live_server_url: str):
    sign_up(page, live_server_url, "jo")
    page.get_by_test_id("account-settings").click()
    page.wait_for_url(f"{live_server_url}/settings/")
    toggle = page.get_by_test_id("share-toggle")
    expect(toggle).to_be_checked()
    expect(page.get_by_role("switch", name="Allow my conversations")).to_be_visible()

    toggle.uncheck()
    page.get_by_test_id("settings-page-save").click()
    expect(page.get_by_test_id("settings-saved")).to_contain_text("None of your feedback")
    page.reload()
    expect(toggle).not_to_be_checked()
    user = get_user_model().objects.get(username="jo")
    assert FeedbackProfile.objects.get(user=user).share_for_training is False


def test_an_api_key_is_created_shown_once_used_and_revoked(browser, live_server_url: str):
    # bypass_csp: the page's own policy would refuse the injected axe script.
    page = browser.new_context(bypass_csp=True).new_page()
    sign_up(page, live_server_url, "kim")
    page.goto(f"{live_server_url}/settings/")
    page.fill("#api-key-name", "support widget")
    page.get_by_test_id("api-key-create").click()
    shown = page.get_by_test_id("api-key-new")
    expect(shown).to_contain_text("shown this once")
    secret = shown.locator("code").inner_text()
    listed = page.get_by_test_id("api-key")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("support widget")
    assert secret not in listed.inner_text()  # the list names a prefix only
    assert serious_violations(page) == []

    bearer = {"Authorization": f"Bearer {secret}"}
    models = page.request.get(f"{live_server_url}/v1/models", headers=bearer)
    assert models.status == 200 and models.json()["data"][0]["id"] == "loopchat"

    page.reload()  # the form is not resent and the key is not shown again
    expect(page.get_by_test_id("api-key-new")).to_have_count(0)
    assert secret not in page.content()
    page.get_by_test_id("api-key-revoke").click()
    expect(page.get_by_test_id("api-key")).to_contain_text("revoked")
    expect(page.get_by_test_id("api-key-revoke")).to_have_count(0)
    refused = page.request.get(f"{live_server_url}/v1/models", headers=bearer)
    assert refused.status == 401 and refused.json()["error"]["code"] == "invalid_api_key"
