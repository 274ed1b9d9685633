"""The chat page's fixes of issue #11, each in real Chromium against a real server.

Replies with chosen content (code, long text) are stored rows; the tiny model
writes gibberish, so it only serves the tests that need a live stream.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from chat import services
from chat.models import Conversation, Message
from feedback.models import Rating
from tests.chat_tests.test_browser import (
    CONTENT,
    REPLY,
    STREAMING_WITH_TEXT,
    send,
    sign_up,
    stop_streaming_reply,
)
from tests.support.factories import exchange

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
PYTHON_REPLY = (
    "Here is one:\n\n```python\ndef greet(name):\n    return f'Hello, {name}'\n```\n\nDone."
)

# Per reply footer: its height and the vertical middle of each child it shows
# (children are centred on the line, so one line means one middle).
FOOTER_LINES = f"""() => [...document.querySelectorAll('{REPLY} .message-footer')].map((footer) => ({{
    height: footer.getBoundingClientRect().height,
    middles: [...footer.children].filter((child) => child.getClientRects().length)
        .map((child) => {{ const box = child.getBoundingClientRect(); return (box.top + box.bottom) / 2; }}),
}}))"""


def stored_reply(username: str, answer: str, **fields) -> Conversation:
    """A conversation of ``username``'s with one finished reply saying ``answer``."""
    owner = get_user_model().objects.get(username=username)
    conversation = services.conversation_create(owner=owner, title="Stored")
    _, (reply,) = exchange(conversation, "Show me", [answer])
    if fields:
        Message.objects.filter(pk=reply.pk).update(**fields)
    return conversation


def open_stored(page: Page, base_url: str, conversation: Conversation) -> None:
    page.goto(f"{base_url}/c/{conversation.pk}/")
    expect(page.locator(REPLY)).to_have_attribute("data-status", "complete")


def boxes_overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_it_brings_the_feedback_form_into_sight_above_the_composer_on_a_phone(
    page: Page, live_server_url: str, page_events: dict
):
    """At 390×844, a thumb on a long reply opens a form whose Submit shows, clear of the box."""
    page.set_viewport_size(PHONE)
    sign_up(page, live_server_url, "kim")
    long_answer = "\n\n".join(f"Paragraph {n} of a long answer." for n in range(40))
    open_stored(page, live_server_url, stored_reply("kim", long_answer))

    page.get_by_test_id("thumb-down").click()
    submit = page.get_by_test_id("feedback-submit")
    expect(submit).to_be_in_viewport(ratio=1)  # No scrolling by the test: the page did it.
    composer = page.get_by_test_id("composer-form").bounding_box()
    assert not boxes_overlap(submit.bounding_box(), composer)
    submit.scroll_into_view_if_needed()
    box = submit.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]
    assert not boxes_overlap(box, composer)

    page.get_by_test_id("feedback-comment").fill("Too long for a phone.")
    submit.click()
    expect(page.get_by_test_id("feedback-form")).to_have_count(0)
    expect(page.get_by_test_id("feedback-summary")).to_contain_text("Too long for a phone.")
    assert Rating.objects.get().comment == "Too long for a phone."
    assert page_events == {"errors": [], "dialogs": []}


def test_it_highlights_fenced_code_in_a_reply(page: Page, live_server_url: str, page_events: dict):
    """A ```python block gets highlight.js's spans; the rest of the reply stays plain."""
    sign_up(page, live_server_url, "lee")
    open_stored(page, live_server_url, stored_reply("lee", PYTHON_REPLY))

    code = page.locator(f"{REPLY} pre code")
    expect(code).to_have_class("language-python hljs")
    expect(code.locator(".hljs-keyword").first).to_have_text("def")
    expect(code.locator(".hljs-string")).to_have_count(1)
    expect(code).to_have_text("def greet(name):\n    return f'Hello, {name}'")
    expect(page.locator(f"{REPLY} {CONTENT} p").last).to_have_text("Done.")
    assert page_events == {"errors": [], "dialogs": []}


def test_the_reply_footer_keeps_to_one_line_after_a_regenerate(
    page: Page, live_server_url: str, page_events: dict
):
    """Pager, state and buttons share one line at 1280 px and at 390 px."""
    sign_up(page, live_server_url, "max")
    send(page, "Hello there")
    stop_streaming_reply(page)
    page.locator(f'{REPLY} [data-testid="regenerate"]').click()
    expect(page.locator(f'{REPLY} [data-testid="sibling-index"]')).to_have_text("2/2")
    stop_streaming_reply(page)
    expect(page.get_by_test_id("prefer")).to_be_visible()  # The widest footer there is.
    expect(page.locator(f'{REPLY} [data-testid="message-state"]')).to_have_text("Stopped")

    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        page.locator(f'{REPLY} [data-testid="details-toggle"]').click()  # Open, then
        expect(page.locator(f'{REPLY} [data-testid="message-details"]')).to_be_visible()
        (footer,) = page.evaluate(FOOTER_LINES)
        assert len(footer["middles"]) >= 3, footer  # pager, state, buttons
        assert max(footer["middles"]) - min(footer["middles"]) <= 1, (viewport, footer)
        assert footer["height"] <= 34, (viewport, footer)
        page.locator(f'{REPLY} [data-testid="details-toggle"]').click()  # closed again.
        expect(page.locator(f'{REPLY} [data-testid="message-details"]')).to_be_hidden()
    assert page_events["errors"] == []


def test_reply_figures_show_behind_details_and_to_staff_at_once(
    page: Page, live_server_url: str, page_events: dict
):
    """Tokens, speed and model version are hidden until Details; staff see them at once."""
    sign_up(page, live_server_url, "nia")
    conversation = stored_reply(
        "nia", "Paris.", completion_tokens=12, duration_ms=400.0, time_to_first_token_ms=35.0
    )
    open_stored(page, live_server_url, conversation)
    stats = page.locator(f'{REPLY} [data-testid="message-stats"]')
    toggle = page.locator(f'{REPLY} [data-testid="details-toggle"]')

    expect(stats).to_be_hidden()
    expect(page.locator(f'{REPLY} [data-testid="message-model"]')).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(stats).to_be_visible()
    expect(stats).to_have_text("12 tokens · 30.0 tok/s · first token 35 ms")
    expect(page.locator(f'{REPLY} [data-testid="message-model"]')).to_have_text("base-v0")
    expect(toggle).to_have_attribute("aria-expanded", "true")

    get_user_model().objects.filter(username="nia").update(is_staff=True)
    page.reload()
    expect(stats).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    assert page_events == {"errors": [], "dialogs": []}


RENDER = """async ([text, streaming]) => {
    const { renderMarkdown } = await import("/static/js/markdown.js");
    const host = document.createElement("div");
    host.className = "markdown";
    document.body.append(host);
    renderMarkdown(host, text, { streaming });
    const cursor = host.querySelector('[data-testid="stream-cursor"]');
    const result = { cursors: host.querySelectorAll('[data-testid="stream-cursor"]').length,
        inPre: Boolean(cursor?.closest("pre > code")), keywords: host.querySelectorAll(".hljs-keyword").length,
        parent: cursor?.parentElement.tagName ?? null, sameLine: null };
    if (cursor) {
        // The cursor shares a line with the last character before it.
        const walker = document.createTreeWalker(host, NodeFilter.SHOW_TEXT);
        let before = null;
        while (walker.nextNode()) {
            if (cursor.compareDocumentPosition(walker.currentNode) & Node.DOCUMENT_POSITION_PRECEDING
                && walker.currentNode.textContent.trim()) before = walker.currentNode;
        }
        const range = document.createRange();
        const end = before.textContent.trimEnd().length;
        range.setStart(before, end - 1);
        range.setEnd(before, end);
        const char = range.getBoundingClientRect(), mark = cursor.getBoundingClientRect();
        result.sameLine = mark.top < char.bottom && char.top < mark.bottom;
    }
    host.remove();
    return result;
}"""


def test_the_streaming_cursor_follows_the_last_character_even_in_open_code(
    page: Page, live_server_url: str, page_events: dict
):
    """Mid-fence the cursor is inside the pre on the code's last line; in prose, inline."""
    sign_up(page, live_server_url, "oli")

    open_fence = page.evaluate(RENDER, ["Try:\n\n```python\ndef f():\n    return 1", True])
    # After "1", inside highlight.js's number span, inside the pre's code.
    assert open_fence == {
        "cursors": 1, "inPre": True, "keywords": 2, "parent": "SPAN", "sameLine": True
    }  # fmt: skip
    prose = page.evaluate(RENDER, ["A list:\n\n- one\n- **two**", True])
    assert (prose["cursors"], prose["inPre"], prose["sameLine"]) == (1, False, True)
    assert prose["parent"] == "STRONG"
    assert page.evaluate(RENDER, ["Try:\n\n```python\ndef f():", False])["cursors"] == 0
    assert page.evaluate(RENDER, ["", True])["cursors"] == 0  # the typing dots show instead

    # A live reply: one cursor, inside the last block the text is in, gone once stopped.
    send(page, "Hello there")
    page.wait_for_function(STREAMING_WITH_TEXT)
    streaming = page.locator(f'{REPLY}[data-status="streaming"] {CONTENT}')
    expect(streaming.locator('[data-testid="stream-cursor"]')).to_have_count(1)
    assert streaming.evaluate(
        "(content) => content.querySelector('[data-testid=\"stream-cursor\"]').parentElement"
        " !== content"
    )
    stop_streaming_reply(page)
    expect(page.locator('[data-testid="stream-cursor"]')).to_have_count(0)
    assert page_events == {"errors": [], "dialogs": []}


def test_settings_open_in_an_empty_chat_and_apply_to_its_first_message(
    page: Page, live_server_url: str, page_events: dict
):
    """The settings button works before the first message; saving starts the conversation."""
    sign_up(page, live_server_url, "pat")
    button = page.get_by_test_id("settings-button")
    expect(button).to_be_enabled()
    button.click()
    expect(page.get_by_test_id("settings-dialog")).to_be_visible()
    expect(page.locator('input[name="max_new_tokens"]')).to_have_value("3000")  # the default

    page.fill('input[name="temperature"]', "5")
    page.get_by_test_id("settings-save").click()
    error = page.get_by_test_id("field-error-temperature")
    expect(error).to_have_text("Temperature must be between 0 and 2.")  # a sentence
    page.fill('input[name="temperature"]', "0.3")
    page.fill('textarea[name="system_prompt"]', "Answer in French.")
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("settings-dialog")).to_be_hidden()
    page.wait_for_url(f"{live_server_url}/c/*/")

    send(page, "Bonjour")
    stop_streaming_reply(page)
    conversation = Conversation.objects.get()
    assert (conversation.temperature, conversation.system_prompt) == (0.3, "Answer in French.")
    assert conversation.title == "Bonjour"
    reply = Message.objects.get(role=Message.Role.ASSISTANT)
    assert reply.sampling["temperature"] == 0.3
    assert reply.prompt_messages[0] == {"role": "system", "content": "Answer in French."}
    assert page_events == {"errors": [], "dialogs": []}


def test_logging_out_says_so_on_the_login_page(page: Page, live_server_url: str, page_events):
    """Log out lands on the login page with a confirmation, shown once."""
    sign_up(page, live_server_url, "quinn")
    page.get_by_test_id("logout").click()
    page.wait_for_url(f"{live_server_url}/login/")
    expect(page.get_by_test_id("auth-message")).to_have_text("You have been logged out.")
    expect(page.get_by_role("status")).to_have_text("You have been logged out.")

    page.reload()
    expect(page.get_by_test_id("auth-message")).to_have_count(0)
    assert page_events["errors"] == []


def test_a_long_title_is_cut_by_the_page_not_stored_with_an_ellipsis(
    page: Page, live_server_url: str
):
    """The header shows "…" with CSS when the saved title does not fit a phone."""
    page.set_viewport_size(PHONE)
    sign_up(page, live_server_url, "ray")
    conversation = stored_reply("ray", "Fine.")
    Conversation.objects.filter(pk=conversation.pk).update(
        title="A title long enough that it cannot fit in a phone header"
    )
    open_stored(page, live_server_url, conversation)
    title = page.get_by_test_id("conversation-title")
    expect(title).to_have_text("A title long enough that it cannot fit in a phone header")
    assert title.evaluate(
        "(h1) => getComputedStyle(h1).textOverflow === 'ellipsis' && h1.scrollWidth > h1.clientWidth"
    )
