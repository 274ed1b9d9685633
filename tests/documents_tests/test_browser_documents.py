"""Chat with your documents in real headless Chromium, against real processes:
Uvicorn with the tiny model, and a Celery worker that indexes the uploads."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from chat.models import Message
from documents.models import Document
from feedback.models import Rating
from tests.chat_tests.conftest import RESULTS
from tests.documents_tests.conftest import MANUAL
from tests.llm_tests.retrieval.conftest import locked_pdf_bytes
from tests.support.browsing import PASSWORD, log_in, serious_violations
from tests.support.servers import app_env, asgi_server, celery_process, process_env

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPLY = '[data-testid="message"][data-role="assistant"]'
QUESTION = "How often should I descale the Kettle K-40?"
PASSAGE = "Descale the Kettle K-40 every 6 weeks with citric acid."
DIALOG_ANSWER = "accept"  # the library's delete asks confirm() first


@pytest.fixture(scope="module")
def live_server_url(
    django_db_setup: None, tiny_model_4k_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Uvicorn and a Celery worker sharing one documents folder; short replies."""
    folder = tmp_path_factory.mktemp("documents")
    logs = tmp_path_factory.mktemp("logs")
    shared = {"DOCUMENTS_DIR": str(folder), "DOCUMENTS_EMBEDDING_MODEL": ""}
    env = app_env(tiny_model_4k_dir, CHAT_DEFAULT_MAX_NEW_TOKENS="16", **shared)
    with (
        celery_process("worker", process_env(**shared), logs / "worker.log"),
        asgi_server(env, logs / "server.log") as url,
    ):
        yield url


@pytest.fixture
def dora(django_user_model):
    return django_user_model.objects.create_user("dora", password=PASSWORD)


def screenshot(page: Page, name: str) -> None:
    """Into test-results/ when LOOPCHAT_SCREENSHOTS=1, to look the layout over."""
    if os.environ.get("LOOPCHAT_SCREENSHOTS") == "1":
        RESULTS.mkdir(exist_ok=True)
        page.screenshot(path=RESULTS / f"{name}.png", full_page=True)


def attach(page: Page, name: str, content: bytes, mime: str) -> None:
    """Through the Attach button's file chooser, as a person would."""
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("attach").click()
    chooser.value.set_files({"name": name, "mimeType": mime, "buffer": content})


def test_it_answers_from_an_attached_file_and_opens_the_cited_passage(
    page: Page, live_server_url: str, dora, page_events
):
    """An upload in an empty chat starts the conversation, is indexed to ready;
    the reply lists it under Sources; a source opens its passage, Esc closes it."""
    log_in(page, live_server_url, "dora")
    attach(page, "kettle.md", MANUAL.encode(), "text/markdown")
    expect(page).to_have_url(re.compile(r"/c/\d+/$"))
    document = page.get_by_test_id("document")
    expect(document.get_by_test_id("document-name")).to_have_text("kettle.md")
    expect(document).to_have_attribute("data-status", "ready", timeout=60_000)
    stored = Document.objects.get()
    expect(document.get_by_test_id("document-state")).to_have_text(
        f"Ready · {stored.chunk_count} passage{'s' if stored.chunk_count != 1 else ''}"
    )
    assert stored.conversation_id == int(page.url.rstrip("/").rsplit("/", 1)[1])
    expect(page.get_by_test_id("documents-count")).to_have_text("1")

    page.get_by_test_id("composer").fill(QUESTION)
    page.get_by_test_id("composer").press("Enter")
    reply = page.locator(REPLY)
    sources = reply.get_by_test_id("source")
    # The first grounded reply loads the search index: allow it time on a busy CPU.
    expect(sources.first).to_contain_text("[1]", timeout=60_000)
    expect(sources.first).to_contain_text("kettle.md")
    expect(reply).to_have_attribute("data-status", "complete", timeout=60_000)
    expect(reply.get_by_test_id("sources-title")).to_contain_text("cited")
    assert sources.first.get_attribute("data-cited") in ("true", "false")
    # A grounded reply's thumbs-down offers "Not supported by the sources".
    reply.get_by_test_id("thumb-down").click()
    page.get_by_test_id("reason-unsupported").check()
    page.get_by_test_id("feedback-submit").click()
    expect(page.get_by_test_id("feedback-form")).to_have_count(0)
    assert Rating.objects.get().reasons == ["unsupported"]

    descaling = reply.locator('[data-testid="source"]', has_text="Descaling")
    source_button = descaling.get_by_test_id("source-open")
    source_button.click()
    dialog = page.get_by_test_id("passage-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("passage-title")).to_contain_text("kettle.md")
    expect(dialog.get_by_test_id("passage-text")).to_contain_text(PASSAGE)
    expect(dialog.get_by_test_id("passage-deleted")).to_be_hidden()
    assert page.evaluate("document.activeElement.closest('dialog[open]') !== null")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(source_button).to_be_focused()

    # Stored with the reply: a reload shows the sources; a deleted file's passage
    # still opens from the copy the reply kept, saying the file is gone.
    page.reload()
    expect(descaling).to_be_visible()
    page.get_by_test_id("documents-button").click()
    page.get_by_test_id("document-remove").click()
    expect(page.get_by_test_id("document")).to_have_count(0)
    assert not Document.objects.exists()
    descaling.get_by_test_id("source-open").click()
    expect(dialog.get_by_test_id("passage-deleted")).to_have_text(re.compile("deleted"))
    expect(dialog.get_by_test_id("passage-text")).to_contain_text(PASSAGE)
    assert page_events["errors"] == []


def test_citation_markers_become_buttons_after_sanitising(
    page: Page, live_server_url: str, dora, page_events
):
    """[1] and [1, 2] turn into buttons for sources that exist; [9] and code stay
    text, the model's HTML stays escaped; cited sources are marked."""
    log_in(page, live_server_url, "dora")
    result = page.evaluate(
        """async () => {
            const { renderMarkdown } = await import("/static/js/markdown.js");
            const citations = await import("/static/js/citations.js");
            const sources = [
                {number: 1, chunk: 1, filename: "a.md", heading: "Intro", page: null, text: "A", cited: true},
                {number: 2, chunk: 2, filename: "b.pdf", heading: "", page: 3, text: "B", cited: false},
            ];
            const opened = [];
            const host = document.createElement("div");
            renderMarkdown(host, "Yes [1]. Also [1, 2], not [9]. `[2]` <b>[1]</b>");
            citations.linkCitations(host, sources, (source) => opened.push(source.number));
            const block = citations.buildSourcesBlock(7);
            citations.renderSources(block, sources, () => {});
            host.querySelectorAll("[data-testid=citation-marker]").forEach((b) => b.click());
            return {
                markers: [...host.querySelectorAll("[data-testid=citation-marker]")].map((b) => b.textContent),
                opened, text: host.textContent, bold: host.querySelectorAll("b").length,
                title: block.querySelector("[data-testid=sources-title]").textContent,
                items: [...block.querySelectorAll("[data-testid=source]")].map((li) => [li.dataset.cited, li.textContent]),
            };
        }"""
    )
    # The model's <b> is escaped text: the [1] inside it is a marker, the tag never is.
    assert result["markers"] == ["1", "1", "2", "1"] and result["opened"] == [1, 1, 2, 1]
    assert "not [9]. [2] <b>[1]</b>" in result["text"] and result["bold"] == 0
    assert result["title"] == "Sources · 1 of 2 cited"
    assert result["items"] == [["true", "[1]a.mdIntroCited"], ["false", "[2]b.pdfpage 3"]]
    assert page_events["errors"] == []


def test_it_says_why_a_file_was_refused_or_failed(
    page: Page, live_server_url: str, dora, page_events
):
    """Refused uploads show the server's sentence; a file that cannot be read fails
    with its reason."""
    log_in(page, live_server_url, "dora")
    attach(page, "empty.txt", b"", "text/plain")
    errors = page.get_by_test_id("upload-error")
    expect(errors).to_have_text(["empty.txt is empty."])
    attach(page, "setup.txt", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" * 20, "text/plain")
    expect(errors).to_have_count(1)  # each attempt starts afresh
    expect(errors).not_to_have_text("")
    expect(page.get_by_test_id("document")).to_have_count(0)

    attach(page, "locked.pdf", locked_pdf_bytes(["secret"], user_password="pw"), "application/pdf")
    document = page.get_by_test_id("document")
    expect(document).to_have_attribute("data-status", "failed", timeout=60_000)
    failed = Document.objects.get()
    assert failed.error
    expect(document.get_by_test_id("document-state")).to_have_text(failed.error)
    assert page_events["errors"] == []


def test_the_library_page_uploads_lists_and_deletes(
    page: Page, live_server_url: str, dora, page_events
):
    log_in(page, live_server_url, "dora")
    page.get_by_test_id("link-documents").click()
    expect(page).to_have_url(f"{live_server_url}/documents/")
    expect(page.get_by_test_id("documents-empty")).to_be_visible()
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("library-upload").click()
    chooser.value.set_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"Tea."})
    document = page.get_by_test_id("document")
    expect(document).to_have_attribute("data-status", "ready", timeout=60_000)
    assert Document.objects.get().conversation_id is None
    page.reload()
    expect(document.get_by_test_id("document-name")).to_have_text("notes.txt")
    document.get_by_test_id("document-remove").click()
    expect(document).to_have_count(0)
    expect(page.get_by_test_id("documents-empty")).to_be_visible()
    assert page_events["dialogs"] and not Document.objects.exists()
    assert page_events["errors"] == []


# Every text a document row's state line shows, as it changes.
RECORD_STATES = """() => {
    window.seenStates = [];
    new MutationObserver(() => {
        for (const state of document.querySelectorAll('[data-testid="document-state"]')) {
            if (window.seenStates.at(-1) !== state.textContent) window.seenStates.push(state.textContent);
        }
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_an_upload_shows_how_much_of_the_file_is_sent(
    page: Page, live_server_url: str, dora, page_events
):
    """The row counts the bytes sent ("Uploading… 100%"), then the indexing."""
    log_in(page, live_server_url, "dora")
    page.goto(f"{live_server_url}/documents/")
    expect(page.get_by_test_id("documents-loading")).to_be_hidden()
    page.evaluate(RECORD_STATES)
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("library-upload").click()
    text = "The Kettle K-40 boils a litre in three minutes.\n" * 20_000  # about 1 MB
    chooser.value.set_files({"name": "big.txt", "mimeType": "text/plain", "buffer": text.encode()})
    expect(page.get_by_test_id("document")).to_have_attribute(
        "data-status", "ready", timeout=60_000
    )
    seen = page.evaluate("window.seenStates")
    uploading = [state for state in seen if state.startswith("Uploading…")]
    assert uploading and uploading[-1] == "Uploading… 100%", seen
    assert seen.index(uploading[-1]) < len(seen) - 1  # then the server's states
    assert page_events["errors"] == []


def test_documents_and_sources_have_no_serious_accessibility_findings(
    browser,
    live_server_url: str,
    dora,
):
    """axe-core over the chat with its documents panel, a grounded reply and the
    passage dialog, and the library page, at 1280 and 390 px: nothing serious,
    nothing wider than the window."""
    findings = {}
    for width, height in [(1280, 900), (390, 844)]:
        # bypass_csp: the page's own policy would refuse the injected axe script.
        context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
        page = context.new_page()
        log_in(page, live_server_url, "dora")
        if width == 1280:
            attach(page, "kettle.md", MANUAL.encode(), "text/markdown")
            expect(page.get_by_test_id("document")).to_have_attribute(
                "data-status", "ready", timeout=60_000
            )
            page.get_by_test_id("composer").fill(QUESTION)
            page.get_by_test_id("composer").press("Enter")
            chat_url = page.url
        else:
            page.goto(chat_url)
            page.get_by_test_id("documents-button").click()
        expect(page.locator(REPLY)).to_have_attribute("data-status", "complete", timeout=60_000)
        findings[f"chat@{width}"] = serious_violations(page)
        screenshot(page, f"documents-chat-{width}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.get_by_test_id("source-open").first.click()
        expect(page.get_by_test_id("passage-dialog")).to_be_visible()
        findings[f"passage@{width}"] = serious_violations(page)
        screenshot(page, f"documents-passage-{width}")
        page.goto(f"{live_server_url}/documents/")
        expect(page.get_by_test_id("documents-loading")).to_be_hidden()
        findings[f"library@{width}"] = serious_violations(page)
        screenshot(page, f"documents-library-{width}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        context.close()
    assert {name: found for name, found in findings.items() if found} == {}


FERRY = """# Isle of Carrowmere

## Winter sailings

From November to March the ferry leaves Port Ellan at 07:40 and 15:10.

## Fares

A return ticket costs **18 pounds**; children travel free.
"""
FERRY_QUESTION = "Isle of Carrowmere: winter sailings and fares?"


def test_sources_of_one_file_are_told_apart_and_a_passage_reads_as_markdown(
    browser, live_server_url: str, dora, page_events
):
    """Two sections of one guide: at 1280 and 390 px their entries show the headings
    that differ ("Winter sailings", "Fares"), not the guide's title twice, and the
    full path on hover; the passage dialog renders the Markdown (no "##", no "**")."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    log_in(page, live_server_url, "dora")
    attach(page, "carrowmere-ferry.md", FERRY.encode(), "text/markdown")
    expect(page.get_by_test_id("document")).to_have_attribute(
        "data-status", "ready", timeout=60_000
    )
    page.get_by_test_id("composer").fill(FERRY_QUESTION)
    page.get_by_test_id("composer").press("Enter")
    reply = page.locator(REPLY)
    expect(reply).to_have_attribute("data-status", "complete", timeout=60_000)
    sources = reply.get_by_test_id("source")
    expect(sources).to_have_count(2)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 844})
        wheres = reply.locator(".source-where")
        expect(wheres).to_have_text(["Winter sailings", "Fares"], ignore_case=False)
        for where in wheres.all():  # each shown whole, not cut off
            assert where.evaluate("(node) => node.scrollWidth <= node.clientWidth"), width
            assert where.is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    fares = reply.get_by_test_id("source-open").nth(1)
    expect(fares).to_have_attribute("title", "carrowmere-ferry.md: Isle of Carrowmere > Fares")

    fares.click()
    text = page.get_by_test_id("passage-text")
    expect(text.locator("strong", has_text="18 pounds")).to_be_visible()
    expect(text).not_to_contain_text("**")
    expect(text).not_to_contain_text("##")
    expect(text.locator("h1, h2, h3")).to_have_count(0)  # the dialog's title stays the heading
    expect(page.get_by_test_id("passage-where")).to_have_text("Isle of Carrowmere > Fares")
    assert serious_violations(page) == []
    page.keyboard.press("Escape")
    assert serious_violations(page) == []
    assert page_events["errors"] == []
    context.close()


def test_a_message_no_passage_matches_says_so_and_the_model_may_say_it_does_not_know(
    page: Page, live_server_url: str, dora, page_events
):
    log_in(page, live_server_url, "dora")
    attach(page, "carrowmere-ferry.md", FERRY.encode(), "text/markdown")
    expect(page.get_by_test_id("document")).to_have_attribute(
        "data-status", "ready", timeout=60_000
    )
    page.get_by_test_id("composer").fill("Xylophones quizzically juggle zebras?")
    page.get_by_test_id("composer").press("Enter")
    reply = page.locator(REPLY)
    notice = reply.get_by_test_id("sources-unmatched")
    expect(notice).to_contain_text("no passage matched", timeout=60_000)
    expect(reply.get_by_test_id("sources-title")).to_have_text("No passage matched")
    expect(reply).to_have_attribute("data-status", "complete", timeout=60_000)
    expect(notice).to_be_visible()
    stored = Message.objects.get(role="assistant")
    assert stored.sources == []
    system = stored.prompt_messages[0]
    assert system["role"] == "system" and "say that you do not know" in system["content"]
    assert page_events["errors"] == []
