"""The chat UI in real headless Chromium against a real Uvicorn server and the tiny model."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from chat.models import Conversation, Message
from tests.support.browsing import serious_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPLY = '[data-testid="message"][data-role="assistant"]'
USER_MESSAGE = '[data-testid="message"][data-role="user"]'
CONTENT = '[data-testid="message-content"]'
PASSWORD = "a-long-Passphrase-9"

# True once some reply shows text while it is still streaming.
STREAMING_WITH_TEXT = f"""() => [...document.querySelectorAll('{REPLY}')].some((reply) =>
    reply.dataset.status === "streaming" &&
    reply.querySelector('{CONTENT}').textContent.trim() !== "")"""


def sign_up(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click('[data-testid="signup-submit"]')
    page.wait_for_url(f"{base_url}/")
    expect(page.get_by_test_id("status")).not_to_have_text("Connecting…")


def send(page: Page, text: str) -> None:
    composer = page.get_by_test_id("composer")
    expect(page.get_by_test_id("stop")).to_be_hidden()
    composer.fill(text)
    composer.press("Enter")


def stop_streaming_reply(page: Page) -> str:
    """Wait for text to stream in, press stop; the stopped reply's id."""
    page.wait_for_function(STREAMING_WITH_TEXT)
    reply_id = page.locator(f'{REPLY}[data-status="streaming"]').get_attribute("data-message-id")
    page.get_by_test_id("stop").click()
    stopped = page.locator(f'{REPLY}[data-message-id="{reply_id}"]')
    expect(stopped).to_have_attribute("data-status", "stopped")
    return reply_id


def test_it_streams_stops_regenerates_and_shows_markup_as_text(
    page: Page, live_server_url: str, page_events: dict
):
    """Sign up, chat, stop, regenerate, page through siblings; markup never runs."""
    sign_up(page, live_server_url, "dana")

    send(page, "Hello there")
    expect(page.locator(f"{USER_MESSAGE} {CONTENT}")).to_have_text("Hello there")
    first_id = stop_streaming_reply(page)
    first_text = page.locator(f"{REPLY} {CONTENT}").text_content()
    assert first_text.strip(), "the partial text stays after stop"
    expect(page.locator(f'{REPLY} [data-testid="message-stats"]')).to_contain_text("tok/s")
    expect(page.locator(f'{REPLY} [data-testid="message-model"]')).to_have_text(
        "tiny-random-llama-4k"
    )
    first = Message.objects.get(pk=first_id)
    assert first.status == Message.Status.STOPPED
    assert first.content.strip()

    page.locator(f'{REPLY} [data-testid="regenerate"]').click()
    expect(page.locator(f'{REPLY} [data-testid="sibling-index"]')).to_have_text("2/2")
    second_id = stop_streaming_reply(page)
    assert second_id != first_id
    assert Message.objects.get(pk=second_id).parent_id == first.parent_id

    page.locator(f'{REPLY} [data-testid="sibling-prev"]').click()
    expect(page.locator(f'{REPLY} [data-testid="sibling-index"]')).to_have_text("1/2")
    expect(page.locator(REPLY)).to_have_attribute("data-message-id", first_id)
    assert page.locator(f"{REPLY} {CONTENT}").text_content() == first_text
    page.locator(f'{REPLY} [data-testid="sibling-next"]').click()
    expect(page.locator(REPLY)).to_have_attribute("data-message-id", second_id)

    hostile = "<img src=x onerror=alert(1)> <script>alert(2)</script> **not bold**"
    send(page, hostile)
    expect(page.locator(f"{USER_MESSAGE} {CONTENT}").last).to_have_text(hostile)
    stop_streaming_reply(page)
    assert page.locator('[data-testid="message"] img, [data-testid="message"] script').count() == 0
    assert page.locator(f"{USER_MESSAGE} strong").count() == 0
    latest = Message.objects.filter(role=Message.Role.USER).latest("id")
    assert (latest.content, latest.parent_id) == (hostile, int(second_id))
    assert page_events == {"errors": [], "dialogs": []}


def test_it_fits_a_phone(page: Page, live_server_url: str, page_events: dict):
    """At 375 px the composer and the menu button show; the list slides in from it."""
    page.set_viewport_size({"width": 375, "height": 740})
    sign_up(page, live_server_url, "erin")

    expect(page.get_by_test_id("composer")).to_be_in_viewport()
    expect(page.get_by_test_id("menu-button")).to_be_visible()
    expect(page.get_by_test_id("new-conversation")).not_to_be_in_viewport()

    page.get_by_test_id("menu-button").click()
    expect(page.get_by_test_id("new-conversation")).to_be_in_viewport()
    expect(page.get_by_test_id("menu-button")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("new-conversation")).not_to_be_in_viewport()
    assert page_events["errors"] == []


def test_it_renders_model_markdown_without_running_anything(
    page: Page, live_server_url: str, page_events: dict
):
    """Model Markdown becomes formatting; its HTML stays text, unsafe links lose their href."""
    sign_up(page, live_server_url, "fay")
    markdown = (
        "**bold** <b>raw</b> <img src=x onerror=alert(1)> [ok](https://example.com) "
        "[bad](javascript:alert(2)) ![pixel](https://example.com/p.png)\n\n"
        "```python\nprint('<script>alert(3)</script>')\n```"
    )

    html = page.evaluate(
        """async (text) => {
            const { renderMarkdown } = await import("/static/js/markdown.js");
            const host = document.createElement("div");
            renderMarkdown(host, text);
            return host.innerHTML;
        }""",
        markdown,
    )

    assert "<strong>bold</strong>" in html
    assert "&lt;b&gt;raw&lt;/b&gt;" in html and "&lt;img" in html
    assert "<img" not in html and "<script" not in html and "javascript:" not in html
    assert (
        '<a href="https://example.com" target="_blank" rel="noopener noreferrer nofollow">ok</a>'
        in html
    )
    assert 'class="language-python hljs"' in html and 'data-testid="copy-code"' in html
    # Highlighted after sanitising: the code's markup is still escaped text.
    assert "<span class=\"hljs-string\">'&lt;script&gt;alert(3)&lt;/script&gt;'</span>" in html
    assert page_events == {"errors": [], "dialogs": []}


def test_rendered_code_blocks_have_no_serious_accessibility_findings(browser, live_server_url: str):
    """A code block and a table wider than a phone: the code header is legible and
    what scrolls sideways is reachable from the keyboard. Rendered into the
    chat page itself, so the page's own styles apply."""
    # bypass_csp: the page's own policy would refuse the injected axe script.
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = context.new_page()
    sign_up(page, live_server_url, "hal")
    wide = " ".join(["word"] * 60)
    markdown = (
        "Here:\n\n```python\nprint('" + "a" * 200 + "')\n```\n\n"
        f"| a | b |\n|---|---|\n| {wide.replace(' ', '-')} | {wide.replace(' ', '-')} |\n"
    )
    page.evaluate(
        """async (text) => {
            const { renderMarkdown } = await import("/static/js/markdown.js");
            const host = document.createElement("div");
            host.className = "markdown";
            document.querySelector("main").append(host);
            renderMarkdown(host, text);
        }""",
        markdown,
    )
    expect(page.locator(".code-block pre")).to_have_attribute("tabindex", "0")
    expect(page.locator(".markdown table")).to_have_attribute("tabindex", "0")
    found = serious_violations(page)
    context.close()
    assert found == []


def test_it_saves_settings_and_shows_field_errors(page: Page, live_server_url: str):
    """Out-of-range settings show the server's message by the field and save nothing."""
    sign_up(page, live_server_url, "gus")
    page.get_by_test_id("new-conversation").click()
    page.wait_for_url(f"{live_server_url}/c/*/")
    page.get_by_test_id("settings-button").click()

    page.fill('input[name="temperature"]', "5")
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("field-error-temperature")).to_contain_text(
        "Temperature must be between 0 and 2."
    )
    assert Conversation.objects.get().temperature != 5

    page.fill('input[name="temperature"]', "0.3")
    page.fill('input[name="max_new_tokens"]', "64")
    page.fill('textarea[name="system_prompt"]', "Answer in French.")
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("settings-dialog")).to_be_hidden()
    conversation = Conversation.objects.get()
    assert (conversation.temperature, conversation.max_new_tokens) == (0.3, 64)
    assert conversation.system_prompt == "Answer in French."
