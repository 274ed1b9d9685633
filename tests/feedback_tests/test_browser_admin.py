"""The admin's Rating list in real Chromium at 1280 px: it fits, and nothing overlaps."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from chat import services as chat_services
from feedback import services
from feedback.models import Rating
from tests.support.factories import exchange

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_REPLY = (
    "**Paris** is the capital of France. It has been the seat of government since the "
    "tenth century, apart from a few interruptions, and today it is home to about two "
    "million people within the city limits."
)


@pytest.fixture
def ratings(alice, django_user_model) -> list[Rating]:
    """Long replies, comments with an address that has nowhere to break, the widest
    reasons, one reviewed: the widest rows."""
    dave = django_user_model.objects.create_superuser("dave", password="dave-password-1")
    conversation = chat_services.conversation_create(owner=alice)
    _, replies = exchange(conversation, "Capital of France?", [LONG_REPLY] * 3)
    reasons = ["ignored_instructions", "harmful", "off_topic", "too_long"]
    for reply in replies[:2]:
        services.rating_submit(
            user=alice,
            message_id=reply.pk,
            value="down",
            reasons=reasons,
            comment="https://example.com/a_long_address_with_no_place_to_break_a_line_at_all "
            "rambles on about history when I only asked for the name.",
        )
    services.rating_submit(user=alice, message_id=replies[2].pk, value="up", comment="Good.")
    services.ratings_review(
        ratings=Rating.objects.filter(message=replies[0]), reviewer=dave, status="approved"
    )
    return list(Rating.objects.all())


def staff_login(page: Page, url: str, django_user_model) -> None:
    django_user_model.objects.create_superuser("carol", password="carol-password-1")
    page.goto(f"{url}/admin/login/")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "carol-password-1")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


def overlap(first: dict, second: dict) -> bool:
    """Whether two bounding boxes share any area."""
    return not (
        first["x"] + first["width"] <= second["x"]
        or second["x"] + second["width"] <= first["x"]
        or first["y"] + first["height"] <= second["y"]
        or second["y"] + second["height"] <= first["y"]
    )


def test_it_fits_the_rating_list_at_1280_px_with_nothing_over_the_title(
    page: Page, live_server_url: str, ratings, django_user_model
):
    """With the filters and the navigation sidebar open, every column is on screen
    (no horizontal scroll) and the buttons sit beside the title, not over it."""
    assert page.viewport_size == {"width": 1280, "height": 800}
    staff_login(page, live_server_url, django_user_model)
    page.goto(f"{live_server_url}/admin/feedback/rating/")
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    expect(page.locator("#nav-sidebar")).to_be_visible()
    expect(page.locator("#changelist-filter")).to_be_visible()

    table = page.locator("#result_list").bounding_box()
    results = page.locator("#changelist .results").bounding_box()
    container = page.locator("#changelist .changelist-form-container").bounding_box()
    scroll = page.locator("#changelist .results").evaluate(
        "box => ({scroll: box.scrollWidth, client: box.clientWidth})"
    )
    assert table["width"] <= results["width"] <= container["width"]
    assert table["x"] + table["width"] <= container["x"] + container["width"]
    assert scroll["scroll"] <= scroll["client"], scroll
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    right = container["x"] + container["width"]
    for header in ("Status", "Created", "Review"):
        box = page.locator("#result_list thead th", has_text=header).bounding_box()
        assert box["x"] + box["width"] <= right, header

    title = page.locator("#content h1").bounding_box()
    tools = page.locator("#content .object-tools")
    expect(tools).to_be_visible()
    for tool in tools.locator("li").all():
        assert not overlap(tool.bounding_box(), title), (tool.inner_text(), title)
    assert not overlap(tools.bounding_box(), title)
