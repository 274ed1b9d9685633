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
from tests.chat_tests.test_browser import (
    REPLY,
    sign_up,
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
