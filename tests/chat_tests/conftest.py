"""Browser fixtures: a real Uvicorn server on the test database, headless Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import REPO, app_env, asgi_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RESULTS = REPO / "test-results"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item, so fixtures can tell a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def live_server_url(
    django_db_setup: None, tiny_model_4k_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Uvicorn serving the whole app against the test database, model loaded.

    Replies may run to 3000 tokens, so they last long enough to watch and stop.
    Tests that use it need ``transactional_db`` so the server sees their rows.
    """
    env = app_env(tiny_model_4k_dir, CHAT_DEFAULT_MAX_NEW_TOKENS="3000")
    log = tmp_path_factory.mktemp("server") / "server.log"
    with asgi_server(env, log) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: a missing browser is a broken CI
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop marked as running on this thread,
    # which trips Django's async-safety check for the test's own ORM calls. The
    # loop never runs concurrently with them, so the check is moot here. Module
    # scope keeps the override away from other test modules (the consumer's).
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page_events() -> dict[str, list[str]]:
    """What the page did that a test may want to forbid: script errors, dialogs."""
    return {"errors": [], "dialogs": []}


@pytest.fixture
def page(browser, page_events: dict[str, list[str]], request: pytest.FixtureRequest):
    """A fresh browser context; a screenshot lands in test-results/ on failure.

    Dialogs (alert, confirm) are dismissed, unless the test module says
    ``DIALOG_ANSWER = "accept"``.
    """
    dialog_answer = getattr(request.module, "DIALOG_ANSWER", "dismiss")
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda error: page_events["errors"].append(str(error)))
    page.on(
        "dialog",
        lambda dialog: (
            page_events["dialogs"].append(dialog.message),
            getattr(dialog, dialog_answer)(),
        ),
    )
    yield page
    report = getattr(request.node, "report_call", None)
    if report is None or report.failed:
        RESULTS.mkdir(exist_ok=True)
        page.screenshot(path=RESULTS / f"{request.node.name}.png", full_page=True)
    context.close()
