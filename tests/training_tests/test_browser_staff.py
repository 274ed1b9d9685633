"""The learning dashboard and the arena in real Chromium, against real processes:
Uvicorn, a Celery worker that trains, the tiny model; and axe-core over the pages."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect

from chat.models import Message
from feedback.models import FeedbackProfile, PreferencePair, Rating
from tests.support.browsing import PASSWORD, REPO_SCREENSHOTS, log_in, serious_violations
from tests.support.gate import PERMISSIVE_GATE, permissive_gate_env
from tests.support.servers import celery_process, process_env
from tests.support.tiny_model import build_tiny_adapter
from training import pipeline, runs, services
from training.models import ArenaMatch, ModelVersion, TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("sam", password=PASSWORD, is_staff=True)


@pytest.fixture
def two_versions(tiny_model_dir, tmp_path):
    """The base model and a trained version of it in service: the arena has two."""
    adapter = build_tiny_adapter(tiny_model_dir, tmp_path / "v1")
    base = ModelVersion.objects.create(name="tiny-random-llama", base_model=str(tiny_model_dir))
    v1 = ModelVersion.objects.create(
        name="v1-dpo", base_model=str(tiny_model_dir), adapter_path=str(adapter), parent=base
    )
    services.version_activate(version=base)
    services.version_activate(version=v1)
    return base, v1


def test_the_dashboard_shows_a_run_progress_while_it_runs(
    page: Page, live_server_url: str, staff, feedback, tiny_model_dir, tmp_path, page_events
):
    """Train now queues a run through Celery; the page follows it without a reload."""
    env = process_env(
        CHAT_MODEL=str(tiny_model_dir),
        MODEL_VERSIONS_DIR=str(tmp_path / "versions"),
        TRAINING_MAX_STEPS="40",
        **permissive_gate_env(),
    )
    log_in(page, live_server_url, "sam")
    page.goto(f"{live_server_url}/review/dashboard/")
    expect(page.get_by_test_id("new-feedback")).to_have_text("30")  # 20 ratings, 10 pairs
    expect(page.get_by_test_id("next-tick")).to_contain_text("Next tick")
    with celery_process("worker", env, tmp_path / "worker.log"):
        page.get_by_test_id("train-now").click()
        expect(page.get_by_test_id("dashboard-messages")).to_contain_text("queued")
        page.evaluate("window.notReloaded = true")
        run = page.get_by_test_id("run").first
        expect(page.get_by_test_id("train-now")).to_be_disabled()  # one run at a time
        expect(run).to_have_attribute("data-status", "running", timeout=120_000)
        expect(run.get_by_test_id("run-step")).not_to_have_text("0", timeout=120_000)
        step = int(run.get_by_test_id("run-step").text_content())
        assert step > 0
        expect(run).to_have_attribute("data-status", "succeeded", timeout=240_000)
    assert page.evaluate("window.notReloaded") is True  # followed live, not reloaded
    expect(page.get_by_test_id("dashboard-messages")).to_have_count(0)  # "queued" cleared
    expect(run.get_by_test_id("run-checks")).to_contain_text("generated_win_rate")
    expect(run.locator("canvas[data-chart=loss]")).to_be_visible()
    expect(run.get_by_test_id("run-version-link")).to_be_visible()
    expect(page.get_by_test_id("train-now")).to_be_enabled()
    assert TrainingRun.objects.get().trigger == "manual"
    assert page_events["errors"] == []


def test_a_second_train_now_is_refused_with_a_reason(
    page: Page, live_server_url: str, staff, feedback
):
    TrainingRun.objects.create(status="running", stage="dpo", step=3, total_steps=10)
    log_in(page, live_server_url, "sam")
    page.goto(f"{live_server_url}/review/dashboard/")
    expect(page.get_by_test_id("train-busy")).to_contain_text("is in flight")
    # A second tab that still shows the button enabled posts anyway: refused, with why.
    page.evaluate("document.querySelector('[data-testid=train-now]').disabled = false")
    page.get_by_test_id("train-now").click()
    expect(page.get_by_test_id("dashboard-messages")).to_contain_text("Not now: run")
    assert TrainingRun.objects.count() == 1


def test_an_arena_vote_becomes_a_pair_and_moves_the_leaderboard(
    page: Page, live_server_url: str, alice, two_versions, page_events
):
    alice.set_password(PASSWORD)
    alice.save()
    FeedbackProfile.objects.create(user=alice, arena_opt_in=True)
    log_in(page, live_server_url, "alice")
    page.goto(f"{live_server_url}/arena/")
    expect(page.get_by_test_id("leaderboard")).to_contain_text("No votes yet.")
    page.get_by_test_id("arena-prompt").fill("Tell me a joke")
    page.get_by_test_id("arena-ask").click()
    expect(page.get_by_test_id("arena-votes")).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("arena-version-a")).to_have_text("")  # anonymous
    match = ArenaMatch.objects.get()
    replies = {
        side: Message.objects.get(pk=getattr(match, f"reply_{side}_id")).content for side in "ab"
    }
    # The tiny model writes any tokens, newlines and Markdown marks among them (breaks
    # become <br>): the page must show the stored reply as its own renderer draws it.
    expect(page.get_by_test_id("arena-reply-a")).to_have_text(
        rendered(page, replies["a"] or "(empty reply)")
    )
    page.get_by_test_id("vote-b").click()
    expect(page.get_by_test_id("arena-status")).to_contain_text("Thanks, your vote counts")
    expect(page.get_by_test_id("arena-version-b")).to_have_text(
        f"Written by {match.version_b.name}"
    )
    pair = PreferencePair.objects.get()
    assert (pair.source, pair.chosen_id, pair.rejected_id) == (
        "arena",
        match.reply_b_id,
        match.reply_a_id,
    )
    board = page.get_by_test_id("leaderboard")
    expect(board.locator("tbody tr").first).to_have_attribute("data-version", match.version_b.name)
    expect(
        board.locator(f'tr[data-version="{match.version_b.name}"] [data-testid=leaderboard-votes]')
    ).to_have_text("1")
    # One vote pins nothing down: no zero-width "1131–1131", but words.
    expect(board.get_by_test_id("leaderboard-interval").first).to_have_text(
        "too few votes (1 of 10)"
    )
    assert page_events["errors"] == []


def test_the_arena_box_takes_what_the_server_accepts_and_says_why(
    page: Page, live_server_url: str, staff, two_versions
):
    log_in(page, live_server_url, "sam")
    page.goto(f"{live_server_url}/arena/")
    box = page.get_by_test_id("arena-prompt")
    expect(box).to_have_attribute("maxlength", "8000")  # CHAT_MAX_MESSAGE_CHARS
    expect(box).to_have_accessible_description(re.compile("Up to 8000 characters"))
    box.fill("x" * 9000)
    assert len(box.input_value()) == 8000


def test_staff_choose_two_versions_a_rejected_one_too_without_changing_service(
    page: Page, live_server_url: str, staff, tiny_model_dir, tmp_path, page_events
):
    """With one version in service and a rejected one, the arena has no challenger and
    its notice says what to do; staff choose both versions and compare them."""
    base = services.base_version_ensure()
    adapter = build_tiny_adapter(tiny_model_dir, tmp_path / "v1")
    rejected = ModelVersion.objects.create(
        name="v1-rejected",
        base_model=str(tiny_model_dir),
        adapter_path=str(adapter),
        parent=base,
        status=ModelVersion.Status.REJECTED,
    )
    log_in(page, live_server_url, "sam")
    page.goto(f"{live_server_url}/arena/")
    page.get_by_test_id("arena-prompt").fill("Tell me a joke")
    page.get_by_test_id("arena-ask").click()
    notice = page.get_by_test_id("arena-unavailable")
    expect(notice).to_contain_text("choose any two versions")
    expect(notice).to_contain_text("Train now")

    page.get_by_test_id("arena-version-choice-a").select_option(label="v1-rejected (rejected)")
    page.get_by_test_id("arena-version-choice-b").select_option(str(base.pk))
    page.get_by_test_id("arena-ask").click()
    expect(notice).to_be_hidden()
    expect(page.get_by_test_id("arena-votes")).to_be_visible(timeout=60_000)
    page.get_by_test_id("vote-a").click()
    expect(page.get_by_test_id("arena-status")).to_contain_text("Thanks, your vote counts")
    revealed = {page.get_by_test_id(f"arena-version-{side}").text_content() for side in ("a", "b")}
    assert revealed == {f"Written by {base.name}", "Written by v1-rejected"}
    match = ArenaMatch.objects.get()
    assert {match.version_a_id, match.version_b_id} == {base.pk, rejected.pk}
    rejected.refresh_from_db()
    assert rejected.status == "rejected"  # compared, not promoted
    assert ModelVersion.objects.get(status="active") == base
    assert page_events["errors"] == []


def test_the_dashboard_on_a_phone_stacks_its_tables_and_leaves_no_empty_chart(
    browser, live_server_url: str, staff, lived_in
):
    """At 390 px no table scrolls sideways: each row reads as label and value lines,
    the interval among them on screen; the arena leaderboard's too."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
    page = context.new_page()
    log_in(page, live_server_url, "sam")
    page.goto(f"{live_server_url}/review/dashboard/")
    expect(page.get_by_test_id("loop-card")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    overflowing = page.evaluate(
        """[...document.querySelectorAll('.table-scroll')]
            .filter((box) => box.scrollWidth > box.clientWidth + 1).length"""
    )
    assert overflowing == 0
    interval = page.get_by_test_id("rates-interval").first
    interval.scroll_into_view_if_needed()
    box = interval.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    label = page.evaluate(
        "(cell) => getComputedStyle(cell, '::before').content", interval.element_handle()
    )
    assert label == '"95% interval"'
    for chart in page.locator(".chart-box").all():  # a chart box only where a chart draws
        assert chart.locator("canvas").evaluate("(canvas) => canvas.height > 0")
    assert serious_violations(page) == []
    context.close()


def test_the_dashboard_with_no_ratings_draws_no_empty_chart_box(
    page: Page, live_server_url: str, staff
):
    log_in(page, live_server_url, "sam")
    page.goto(f"{live_server_url}/review/dashboard/")
    expect(page.get_by_test_id("rates-table")).to_be_visible()
    expect(page.locator(".chart-box")).to_have_count(0)


RENDER = """async (text) => {
  const arena = document.querySelector('script[src$="/arena.js"]');
  const { renderMarkdown } = await import(new URL("markdown.js", arena.src));
  const box = document.createElement("div");
  renderMarkdown(box, text);
  return box.textContent;
}"""


def rendered(page: Page, markdown: str) -> str:
    """The text the page's own Markdown renderer shows for ``markdown``."""
    return page.evaluate(RENDER, markdown)


def test_the_arena_is_closed_to_users_who_did_not_opt_in(page: Page, live_server_url: str, bob):
    bob.set_password(PASSWORD)
    bob.save()
    log_in(page, live_server_url, "bob")
    response = page.goto(f"{live_server_url}/arena/")
    assert response.status == 403
    expect(page.get_by_test_id("arena-closed")).to_contain_text("opt in")


@pytest.fixture
def lived_in(settings, tiny_model_dir, tmp_path, feedback, alice):
    """A site some time in: a run trained and promoted a version, arena votes between
    it and the base model, and ratings still waiting for review."""
    settings.CHAT_MODEL = str(tiny_model_dir)
    settings.MODEL_VERSIONS_DIR = tmp_path / "versions"
    settings.TRAINING_KNOBS = {"max_steps": 6}
    settings.GATE_KNOBS = dict(PERMISSIVE_GATE)
    base = services.base_version_ensure()
    run = pipeline.training_run_execute(run_id=runs.training_run_create(trigger="manual").pk)
    assert run.status == "succeeded", (run.error, run.reason)
    version = run.version
    prompt = Message.objects.filter(role="user").first()
    reply = Message.objects.filter(parent=prompt).first()
    for index in range(12):
        ArenaMatch.objects.create(
            user=alice,
            prompt_message=prompt,
            reply_a=reply,
            reply_b=reply,
            version_a=version,
            version_b=base,
            winner="a" if index % 3 else "b",
        )
    pending = Rating.objects.order_by("id").values_list("pk", flat=True)[:6]
    Rating.objects.filter(pk__in=list(pending)).update(status="pending")


def test_chat_review_dashboard_and_arena_have_no_serious_accessibility_violations(
    browser, live_server_url: str, staff, lived_in
):
    """axe-core (vendored) finds nothing serious or critical at 1280 and 390 px wide;
    screenshots are written to docs/screenshots/ when LOOPCHAT_SCREENSHOTS=1."""
    findings = {}
    for width, height in [(1280, 900), (390, 844)]:
        # bypass_csp: the page's own policy would refuse the injected axe script.
        context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
        page = context.new_page()
        log_in(page, live_server_url, "sam")
        for name, path, ready in [
            ("chat", "/", "composer"),
            ("review", "/review/", "review-item"),
            ("dashboard", "/review/dashboard/", "loop-card"),
            ("arena", "/arena/", "arena-form"),
        ]:
            page.goto(f"{live_server_url}{path}")
            expect(page.get_by_test_id(ready)).to_be_visible()
            if name == "review":
                expect(page.get_by_test_id("review-progress")).to_have_text(re.compile("of"))
            if name == "arena":  # a match on screen: both replies, the vote buttons
                page.get_by_test_id("arena-prompt").fill("Write a haiku about the sea.")
                page.get_by_test_id("arena-ask").click()
                expect(page.get_by_test_id("arena-votes")).to_be_visible(timeout=60_000)
            findings[f"{name}@{width}"] = serious_violations(page)
            if os.environ.get("LOOPCHAT_SCREENSHOTS") == "1" and name != "chat":
                page.screenshot(path=REPO_SCREENSHOTS / f"{name}-{width}.png", full_page=True)
        context.close()
    assert {name: found for name, found in findings.items() if found} == {}
