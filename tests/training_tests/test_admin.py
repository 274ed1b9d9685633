"""Staff see runs and versions, and promote or roll back from the admin."""

from __future__ import annotations

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from training import services
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    carol = django_user_model.objects.create_superuser("carol", password="carol-password-1")
    client.force_login(carol)
    return client


@pytest.fixture
def versions():
    base = ModelVersion.objects.create(name="base", base_model="m")
    candidate = ModelVersion.objects.create(
        name="run-1",
        base_model="m",
        adapter_path="/tmp/a",
        parent=base,
        method="dpo",
        gate_report={
            "passed": True,
            "checks": [{"name": "heldout_margin", "passed": True, "value": 3.2, "threshold": 1.0}],
            "metrics": {
                "samples": [
                    {
                        "prompt": "Capital of Italy?",
                        "parent": "Rome.",
                        "candidate": "<b>Happy</b> to help! Rome.",
                        "candidate_flags": [],
                    }
                ],
                "judge": "reward_model",
                "heldout_samples": [
                    {
                        "prompt": "Capital of Peru?",
                        "mode": "sampled",
                        "parent": "Lima.",
                        "candidate": "Happy to help! <i>Lima</i>.",
                        "parent_score": -0.25,
                        "candidate_score": 1.5,
                        "candidate_flags": [],
                    }
                ],
            },
        },
    )
    services.version_activate(version=base)
    TrainingRun.objects.create(
        status="succeeded",
        in_flight=None,
        version=candidate,
        method="dpo",
        rating_ids=[1, 2],
        pair_ids=[3],
        history=[{"step": 1, "loss": 0.69}, {"step": 2, "loss": 0.41}],
        step=2,
        total_steps=2,
    )
    return base, candidate


def test_promote_and_roll_back_from_the_admin(staff_client, versions):
    base, candidate = versions
    url = reverse("admin:training_modelversion_changelist")
    staff_client.post(url, {"action": "promote", "_selected_action": [candidate.pk]})
    candidate.refresh_from_db()
    assert candidate.status == "active" and candidate.activated_by.username == "carol"
    staff_client.post(url, {"action": "roll_back", "_selected_action": [base.pk]})
    assert ModelVersion.objects.get(status="active") == base
    candidate.refresh_from_db()
    assert candidate.status == "retired"


def test_the_version_page_shows_the_gate_and_lineage(staff_client, versions):
    _, candidate = versions
    response = staff_client.get(reverse("admin:training_modelversion_change", args=[candidate.pk]))
    html = response.content.decode()
    assert "heldout_margin" in html
    assert "training run" in html and "2 ratings it learned from" in html
    assert "model_version=run-1" in html


def test_the_run_page_shows_progress_and_loss(staff_client, versions):
    run = TrainingRun.objects.get()
    response = staff_client.get(reverse("admin:training_trainingrun_change", args=[run.pk]))
    html = response.content.decode()
    assert "<progress" in html, html
    assert "<polyline" in html
    assert "loss 0.6900 → 0.4100" in html
    assert "id__in=1,2" in html


def test_a_fresh_install_lists_the_base_model_in_service(staff_client, settings, tmp_path):
    """No version row yet: the list creates the base model's, active, exactly once."""
    settings.CHAT_MODEL = "smollm2"
    url = reverse("admin:training_modelversion_changelist")
    assert "SmolLM2-135M-Instruct" in staff_client.get(url).content.decode()
    staff_client.get(url)
    base = ModelVersion.objects.get()
    assert (base.name, base.is_base, base.status) == ("SmolLM2-135M-Instruct", True, "active")


def test_the_base_model_stays_listed_beside_a_promoted_version(staff_client, settings):
    """A trained version in service: the base row appears retired, and rollback reaches it."""
    settings.CHAT_MODEL = "smollm2"
    trained = ModelVersion.objects.create(name="run-7-dpo", base_model="m", adapter_path="/tmp/a")
    services.version_activate(version=trained)
    url = reverse("admin:training_modelversion_changelist")
    staff_client.get(url)
    base = ModelVersion.objects.get(adapter_path="")
    assert base.status == "retired"
    staff_client.post(url, {"action": "roll_back", "_selected_action": [base.pk]})
    assert ModelVersion.objects.get(status="active") == base


def test_the_version_page_shows_parent_and_candidate_replies_side_by_side(staff_client, versions):
    """Rendered escaped: a reply's markup is shown as text, never as HTML."""
    _, candidate = versions
    response = staff_client.get(reverse("admin:training_modelversion_change", args=[candidate.pk]))
    html = response.content.decode()
    assert "<td>Capital of Italy?</td><td><pre>Rome.</pre></td>" in html
    assert "&lt;b&gt;Happy&lt;/b&gt; to help! Rome." in html and "<b>Happy</b>" not in html


def test_the_version_page_shows_held_out_replies_with_the_judges_scores(staff_client, versions):
    _, candidate = versions
    response = staff_client.get(reverse("admin:training_modelversion_change", args=[candidate.pk]))
    html = response.content.decode()
    assert (
        "scored by the run&#x27;s reward model" in html
        or "scored by the run's reward model" in html
    )
    assert (
        "<td>Capital of Peru?</td><td>sampled</td><td><pre>Lima.</pre></td><td>-0.25</td>"
        "<td><pre>Happy to help! &lt;i&gt;Lima&lt;/i&gt;.</pre></td><td>1.50</td>" in html
    )


def test_the_run_list_says_where_the_loop_stands_and_offers_train_now(staff_client, settings):
    """Above the list: feedback since the last run against the tick's threshold, when
    the next tick comes, a Train now form (POST, with its CSRF token), the dashboard."""
    settings.TRAINING_MIN_NEW_FEEDBACK, settings.TRAINING_TICK_SECONDS = 20, 300
    every = IntervalSchedule.objects.create(every=300, period=IntervalSchedule.SECONDS)
    last = timezone.now() - datetime.timedelta(seconds=60)
    PeriodicTask.objects.create(
        name="training-tick", task="training.tick", interval=every, last_run_at=last
    )
    response = staff_client.get(reverse("admin:training_trainingrun_changelist"))
    html = response.content.decode()
    assert '<strong data-testid="new-feedback">0 of the 20</strong>' in html
    tick = last + datetime.timedelta(seconds=300)
    assert f'<time datetime="{tick.isoformat()}">{tick:%H:%M} UTC</time>' in html
    assert "every 5 min" in html
    form = re.search(
        rf'<form method="post" action="{reverse("review:train-now")}">(.*?)</form>', html, re.S
    )
    assert form and 'name="csrfmiddlewaretoken"' in form[1]
    assert re.search(
        r'<button type="submit"[^>]*data-testid="train-now">Train now</button>', form[1]
    )
    assert f'href="{reverse("review:dashboard")}"' in html


def test_train_now_is_disabled_while_a_run_is_in_flight(staff_client, settings):
    settings.TRAINING_TICK_SECONDS = 300
    run = TrainingRun.objects.create(status="running", stage="dpo", step=3, total_steps=12)
    html = staff_client.get(reverse("admin:training_trainingrun_changelist")).content.decode()
    assert 'data-testid="train-now" disabled>Train now' in html
    assert f'Run <a href="{reverse("admin:training_trainingrun_change", args=[run.pk])}">' in html
    assert "Next tick: when Celery beat starts (every 5 min)." in html  # no schedule yet


def test_the_version_list_shows_the_loop_too(staff_client, versions):
    html = staff_client.get(reverse("admin:training_modelversion_changelist")).content.decode()
    assert "In service: <strong>base</strong>." in html
    assert 'data-testid="train-now"' in html
