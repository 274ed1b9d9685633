"""Choosing the training method from the feedback at hand."""

from __future__ import annotations

import pytest

from llm.training import choose_method


def test_it_trains_dpo_on_pairs():
    """Pairs, and no dominant pile of lone ratings, mean DPO."""
    plan = choose_method(pairs=20, unpaired=10, reward_model_passed=False)
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
