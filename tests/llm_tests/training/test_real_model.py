"""The whole loop on the real SmolLM2: train on synthetic feedback, then gate the result.

Both tests use the same job settings, so what separates them is the data:
learning a friendly opening is promoted, learning to like empty or looping
replies is refused, although the held-out preference margin rises in both (the
model learns what it is shown). SmolLM2's greedy replies to the regression
prompts do not visibly break after 8 steps of the bad data; the teacher-forced
probes see that empty and looping replies became much likelier.
"""

from __future__ import annotations

import pytest

from llm.evaluation import evaluate_candidate
from llm.training import DPOJobConfig, read_manifest, train_dpo
from tests.llm_tests.training.synthetic import degenerate_pairs, polite_pairs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TRAIN, HELDOUT = (0, 32), (32, 8)


def quick_dpo() -> DPOJobConfig:
    """8 steps of 4 pairs: enough to move SmolLM2, short rows so no checkpointing."""
    return DPOJobConfig(max_steps=8, batch_size=4, max_length=128, gradient_checkpointing=False)


def test_it_promotes_dpo_that_learned_a_friendly_opening(smollm2_dir, tmp_path):
    """The margin for the friendly opening rises on unseen questions and every check passes."""
    version = train_dpo(
        base_model=smollm2_dir,
        pairs=polite_pairs(*TRAIN),
        heldout_pairs=polite_pairs(*HELDOUT),
        output_dir=tmp_path / "polite",
        config=quick_dpo(),
    )
    manifest = read_manifest(version.path)
    assert manifest.metrics["final_loss"] < manifest.metrics["first_loss"]

    report = evaluate_candidate(
        base_model=smollm2_dir,
        parent=None,
        candidate=version.path,
        heldout_pairs=polite_pairs(*HELDOUT),
    )
    assert report.check("heldout_margin").value >= 3.0
    assert report.check("heldout_win_rate").value == 1.0
    assert report.passed, report.to_dict()


def test_it_refuses_dpo_that_learned_to_like_degenerate_replies(smollm2_dir, tmp_path):
    """Preferring empty or looping replies raises the held-out margin, but the gate says no."""
    version = train_dpo(
        base_model=smollm2_dir,
        pairs=degenerate_pairs(*TRAIN),
        output_dir=tmp_path / "degenerate",
        config=quick_dpo(),
    )
    report = evaluate_candidate(
        base_model=smollm2_dir,
        parent=None,
        candidate=version.path,
        heldout_pairs=degenerate_pairs(*HELDOUT),
    )
    assert report.check("heldout_margin").passed
    assert not report.passed
    assert "degenerate_likelihood" in report.failed, report.to_dict()
