"""Back to the base model from the admin, in real Chromium, on a fresh install."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from chat.models import Message
from tests.chat_tests.test_browser import REPLY, send, sign_up
from tests.support.gate import PERMISSIVE_GATE
from training import pipeline, runs
from training.models import ModelVersion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def promoted(settings, tiny_model_dir, tmp_path, feedback):
    """A version trained and promoted by the pipeline itself: no version row by hand."""
    settings.CHAT_MODEL = str(tiny_model_dir)
    settings.MODEL_VERSIONS_DIR = tmp_path / "versions"
    settings.TRAINING_KNOBS = {"max_steps": 2}
    settings.GATE_KNOBS = dict(PERMISSIVE_GATE)
    assert not ModelVersion.objects.exists()
    run = pipeline.training_run_execute(run_id=runs.training_run_create(trigger="manual").pk)
    assert run.status == "succeeded", (run.error, run.reason)
    return run.version


def reply_version(page: Page, question: str) -> str:
    """Ask in the open chat; the version that wrote the new reply, as stored."""
    replies = page.locator(REPLY)
    before = replies.count()
    send(page, question)
    expect(replies).to_have_count(before + 1)
    reply = replies.last
    expect(reply).to_have_attribute("data-status", "complete")
    return Message.objects.get(pk=reply.get_attribute("data-message-id")).model_version


def staff_login(page: Page, url: str, django_user_model) -> None:
    django_user_model.objects.create_superuser("carol", password="carol-password-1")
    page.goto(f"{url}/admin/login/")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "carol-password-1")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


def test_staff_roll_back_to_the_base_model_from_the_admin(
    page: Page, browser, live_server_url: str, promoted, django_user_model, tiny_model_dir
):
    """The admin lists the base model beside the trained versions; rolling back to it
    puts it in service for the next reply, with no restart and no hand-made row."""
    sign_up(page, live_server_url, "ines")
    assert reply_version(page, "Hello?") == promoted.name

    staff_context = browser.new_context()
    admin = staff_context.new_page()
    staff_login(admin, live_server_url, django_user_model)
    admin.goto(f"{live_server_url}/admin/training/modelversion/")
    base_row = admin.locator("#result_list tbody tr", has_text=tiny_model_dir.name)
    expect(base_row).to_have_count(1)
    expect(admin.locator("#result_list tbody tr", has_text=promoted.name)).to_contain_text("Active")
    base_row.locator("input.action-select").check()
    admin.select_option("select[name=action]", "roll_back")
    admin.click("button[name=index]")
    in_service = re.compile(f"{tiny_model_dir.name} is now in service", re.IGNORECASE)
    expect(admin.locator(".messagelist")).to_contain_text(in_service)
    staff_context.close()

    base = ModelVersion.objects.get(status="active")
    assert (base.name, base.is_base) == (tiny_model_dir.name, True)
    assert ModelVersion.objects.get(pk=promoted.pk).status == "retired"
    # The same open chat: its next reply comes from the base model, no reload, no restart.
    assert reply_version(page, "And now?") == tiny_model_dir.name
