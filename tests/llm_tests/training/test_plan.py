"""Choosing the training method from the feedback at hand."""

from __future__ import annotations

import pytest

from llm.training import FeedbackCounts, choose_method, plan_run


def test_it_trains_dpo_on_pairs():
    """Pairs, and no dominant pile of lone ratings, mean DPO."""
    plan = choose_method(pairs=20, unpaired=7, reward_model_passed=False)
    assert plan.stages == ("dpo",)


def test_it_trains_kto_when_unpaired_thumbs_dominate():
    """Lone thumbs outweighing what the pairs hold mean KTO."""
    plan = choose_method(pairs=3, unpaired=40, reward_model_passed=False)
    assert plan.stages == ("kto",)


def test_it_adds_online_rl_when_a_reward_model_passed():
    """A reward model that passed its own evaluation adds an online RL stage."""
    assert choose_method(pairs=20, unpaired=0, reward_model_passed=True).stages == (
        "dpo",
        "online_rl",
    )
    assert choose_method(pairs=0, unpaired=40, reward_model_passed=True).stages == (
        "kto",
        "online_rl",
    )


def test_it_waits_for_enough_feedback():
    """A couple of ratings make no plan; the counts may be given as collections."""
    plan = choose_method(pairs=[{}], unpaired=[{}, {}], reward_model_passed=False)
    assert plan.empty
    assert "too little" in plan.reason


def test_it_asks_for_a_reward_model_once_pairs_pile_up():
    """Enough pairs flag a reward model (re)training."""
    assert choose_method(pairs=40, unpaired=0, reward_model_passed=False).train_reward_model
    assert not choose_method(pairs=10, unpaired=0, reward_model_passed=False).train_reward_model


def test_it_follows_an_explicit_method_when_the_data_allows():
    """An explicit method is a single stage; one without its data is refused."""
    assert choose_method(pairs=20, unpaired=0, reward_model_passed=False, method="kto").stages == (
        "kto",
    )
    with pytest.raises(ValueError, match="pairs"):
        choose_method(pairs=0, unpaired=30, reward_model_passed=False, method="dpo")
    with pytest.raises(ValueError, match="reward model"):
        choose_method(pairs=30, unpaired=0, reward_model_passed=False, method="online_rl")
    with pytest.raises(ValueError, match="unknown"):
        choose_method(pairs=30, unpaired=0, reward_model_passed=False, method="ppo")


def test_it_states_a_thumbs_only_plan_and_what_judges_it():
    """One thumb per reply, the common case: KTO, judged on the held-out thumbs."""
    counts = FeedbackCounts(train_up=14, train_down=20, heldout_up=5, heldout_down=7)
    plan = plan_run(counts, reward_model_passed=False)
    assert plan.runnable and plan.stages == ("kto",)
    assert plan.statement.startswith("46 thumbs, 0 pairs: KTO")
    assert plan.statement.endswith("judged on 12 held-out thumbs (5 up, 7 down)")
    assert plan.train_reward_model  # enough of each label for Bradley–Terry over thumbs


def test_it_refuses_a_run_nothing_held_out_could_judge():
    """Thumbs that are all up on the held-out side cannot judge a candidate: say what is missing."""
    counts = FeedbackCounts(train_up=20, train_down=10, heldout_up=6, heldout_down=1)
    plan = plan_run(counts, reward_model_passed=False)
    assert not plan.runnable and plan.stages == ("kto",)
    assert "no run can pass yet" in plan.refusal
    assert "0 held-out pairs, 6 up- and 1 down-rated held-out thumbs" in plan.refusal
    assert plan.statement == plan.refusal


def test_it_refuses_too_little_feedback_with_the_counts():
    plan = plan_run(FeedbackCounts(train_up=1, heldout_down=1), reward_model_passed=False)
    assert not plan.runnable and plan.empty
    assert plan.statement.startswith("2 thumbs, 0 pairs: too little feedback")


def test_pairs_and_many_lone_thumbs_train_dpo_then_kto():
    """Mixed data in one run: the pairs by DPO, then the lone thumbs by KTO."""
    counts = FeedbackCounts(train_pairs=12, heldout_pairs=4, train_up=6, train_down=6)
    plan = plan_run(counts, reward_model_passed=False)
    assert plan.stages == ("dpo", "kto")
    assert "DPO then KTO" in plan.reason and "judged on 4 held-out pairs" in plan.reason
