"""The gate on held-out thumbs: implied reward margin, ranking beyond chance, "both fall"."""

from __future__ import annotations

import random

import pytest

from llm.evaluation import GateThresholds, judge
from llm.evaluation.thumbs import ThumbScores, ranking, thumbs_checks
from tests.llm_tests.training.test_gate import measurements


def scores(up_changes: list[float], down_changes: list[float]) -> ThumbScores:
    """Thumbs whose replies' log-likelihood moved by these amounts (parent at -20 nats)."""
    changes = [*up_changes, *down_changes]
    return ThumbScores(
        labels=[True] * len(up_changes) + [False] * len(down_changes),
        parent_logps=[-20.0] * len(changes),
        candidate_logps=[-20.0 + change for change in changes],
    )


LEARNT = scores([2.0, 3.5, 1.0, 4.0, 2.5, 0.5], [-6.0, -3.0, -9.0, -1.0, -4.0, -7.0])


def test_it_passes_thumbs_the_candidate_learnt():
    """Up-rated replies likelier, down-rated less likely, ranked apart: all three pass."""
    checks = {check.name: check for check in thumbs_checks(LEARNT, GateThresholds())}
    assert all(check.passed and check.applicable for check in checks.values())
    assert checks["thumbs_margin"].value == pytest.approx(2.25 - (-5.0))
    assert checks["thumbs_ranking"].value == 1.0
    assert "p = 0.00" in checks["thumbs_ranking"].detail


def test_up_rated_replies_that_held_while_the_down_rated_fell_far_pass():
    """A candidate that learnt (measured on the real model: downs -19.5 nats, ups a
    median -0.77) is not refused for up-rated replies that moved by noise."""
    held = scores([0.6, -0.5, -1.0, 1.2, -0.9, 0.3, -0.8, 0.9], [-15.0, -22.0, -18.0, -25.0])
    check = {c.name: c for c in thumbs_checks(held, GateThresholds())}["thumbs_up_likelier"]
    assert check.passed and check.threshold == pytest.approx(-0.25 * (-0.025 - (-20.0)))
    assert "4 of 8 up-rated replies became likelier" in check.detail


def test_it_refuses_a_margin_made_by_both_falling():
    """Down-rated replies fell further than up-rated ones, but the up-rated fell too."""
    both_fall = scores([-4.0, -3.0, -5.0, -2.5, -4.5, -3.5], [-9.0, -8.0, -12.0, -7.0, -10.0, -6.0])
    checks = {check.name: check for check in thumbs_checks(both_fall, GateThresholds())}
    assert checks["thumbs_margin"].passed and checks["thumbs_ranking"].passed
    assert not checks["thumbs_up_likelier"].passed
    assert "0 of 6 up-rated replies became likelier" in checks["thumbs_up_likelier"].detail


def test_random_thumbs_do_not_pass_by_luck():
    """Labels that mean nothing: the ranking check fails in nearly every draw."""
    rng = random.Random(0)
    passed = 0
    for _ in range(200):
        changes = [rng.gauss(0, 5) for _ in range(30)]
        labels = [rng.random() < 0.4 for _ in changes]
        ups = [c for c, up in zip(changes, labels, strict=True) if up]
        downs = [c for c, up in zip(changes, labels, strict=True) if not up]
        if min(len(ups), len(downs)) < 2:
            continue
        checks = thumbs_checks(scores(ups, downs), GateThresholds())
        passed += all(check.passed for check in checks)
    # The ranking's level is 5%; the "both fall" guard allows a fall of a quarter of
    # the margin, so it filters little here.
    assert passed <= 12


def test_it_ranks_with_a_p_value():
    """AUC 1 on 6 against 6 is p < 0.01; an even split is 0.5 and p near one half."""
    assert ranking([3, 4, 5], [0, 1, 2]) == (1.0, pytest.approx(0.02, abs=0.02))
    auc, p_value = ranking([1, 2], [1, 2])
    assert auc == 0.5 and p_value == pytest.approx(0.5)


def test_without_both_labels_held_out_the_thumbs_checks_are_not_applicable():
    only_ups = scores([1.0, 2.0, 3.0], [-1.0])
    checks = thumbs_checks(only_ups, GateThresholds())
    assert [check.applicable for check in checks] == [False, False, False]
    assert "3 up-rated and 1 down-rated" in checks[0].detail
    assert all(check.outcome == "not applicable" for check in checks)


def test_a_candidate_judged_on_thumbs_alone_can_pass():
    """No held-out pairs: the pair checks are not applicable, the thumbs decide."""
    thumbs_only = measurements(parent_margins=[], candidate_margins=[], thumbs=LEARNT)
    report = judge(thumbs_only, GateThresholds())
    assert report.passed, report.failed
    assert {"thumbs_margin", "thumbs_ranking", "thumbs_up_likelier"} <= set(report.decided_by)
    assert "heldout_margin" not in report.decided_by
    assert report.metrics["heldout_thumbs"] == 12
    assert report.metrics["thumbs_implied_margin"] == pytest.approx(7.25)


def test_a_candidate_that_did_not_learn_the_thumbs_is_rejected():
    unmoved = scores([0.1, -0.2, 0.3, -0.1], [0.2, -0.3, 0.1, 0.0])
    report = judge(
        measurements(parent_margins=[], candidate_margins=[], thumbs=unmoved), GateThresholds()
    )
    assert not report.passed
    assert {"thumbs_margin", "thumbs_ranking"} <= set(report.failed)
