"""The real SmolLM2, trained on feedback stored in the database through the whole
pipeline: feedback preferring degenerate replies is trained, and the gate keeps the
active version. Slow: minutes on a CPU.

That pairs teach the real model a trait and the gate promotes it is proven by
benchmarks/learning.py (learning_uplift 1.00, docs/training.md); in CI,
test_visible_learning.py proves a real-model run promoted through the whole loop
(thumbs, websocket, rollback), and the tiny-model pipeline tests prove DPO's path.
Running the pair case here too cost CI three minutes and proved nothing more."""

from __future__ import annotations

import pytest

from tests.llm_tests.training.synthetic import degenerate_pairs
from tests.support.factories import pairs_stored
from training import pipeline, runs, services
from training.models import ModelVersion

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def smollm2_training(settings, smollm2_dir, tmp_path, bob):
    settings.CHAT_MODEL = "smollm2"  # the gate's replies are llama.cpp's, as served
    settings.INFERENCE_ENGINE = "auto"
    settings.MODEL_VERSIONS_DIR = tmp_path / "versions"
    settings.TRAINING_METHOD = "dpo"
    settings.TRAINING_KNOBS = {"max_steps": 8}
    settings.TRAINING_MIN_REWARD_PAIRS = 10_000  # the DPO stage is what is under test
    base = ModelVersion.objects.create(name="base", base_model=str(smollm2_dir))
    services.version_activate(version=base)
    return base


def test_it_rejects_a_candidate_that_prefers_degenerate_replies(alice, bob, smollm2_training):
    pairs_stored(alice, bob, degenerate_pairs(0, 32))
    run = pipeline.training_run_execute(run_id=runs.training_run_create().pk)
    assert run.status == "rejected", (run.error, run.version and run.version.gate_report)
    assert run.version.status == "rejected"
    failed = {c["name"] for c in run.version.gate_report["checks"] if not c["passed"]}
    assert failed & {"degenerate_likelihood", "degenerate_replies", "length_ratio", "drift_kl"}
    assert ModelVersion.objects.get(status="active") == smollm2_training
