"""Knobs: defaults from the dataclasses, overrides from the settings of their prefix."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import env_knobs
from llm.evaluation import GateThresholds, RewardModelThresholds
from llm.training import DPOJobConfig, KTOJobConfig, OnlineRLJobConfig
from training import knobs


def test_it_builds_the_dataclass_defaults_without_overrides(settings):
    settings.GATE_KNOBS, settings.TRAINING_KNOBS, settings.TRAINING_RL_KNOBS = {}, {}, {}
    assert knobs.gate_thresholds() == GateThresholds()
    assert knobs.reward_model_thresholds() == RewardModelThresholds()
    assert knobs.job_config(DPOJobConfig) == DPOJobConfig()
    assert knobs.job_config(OnlineRLJobConfig) == OnlineRLJobConfig()


def test_it_reads_overrides_from_the_environment_by_prefix(monkeypatch):
    monkeypatch.setenv("GATE_MAX_LENGTH_RATIO", "1.8")
    monkeypatch.setenv("GATE_MIN_REWARD_PAIRS", "6")
    assert env_knobs("GATE_") == {"max_length_ratio": "1.8", "min_reward_pairs": "6"}


def test_it_types_text_overrides_by_field(settings):
    settings.GATE_KNOBS = {"max_length_ratio": "1.8", "min_reward_pairs": "6"}
    settings.TRAINING_KNOBS = {
        "max_steps": "32",
        "gradient_checkpointing": "off",
        "tick_seconds": "9",
    }
    settings.TRAINING_RL_KNOBS = {"max_steps": "3", "algorithm": "grpo"}
    assert knobs.gate_thresholds().max_length_ratio == 1.8
    assert knobs.reward_model_thresholds().min_reward_pairs == 6
    kto = knobs.job_config(KTOJobConfig)
    assert (kto.max_steps, kto.gradient_checkpointing) == (32, False)
    rl = knobs.job_config(OnlineRLJobConfig)
    assert (rl.max_steps, rl.algorithm) == (3, "grpo")


def test_it_refuses_an_unknown_gate_knob_and_a_badly_typed_value(settings):
    settings.GATE_KNOBS = {"max_lenght_ratio": "1.8"}
    with pytest.raises(ImproperlyConfigured, match="GATE_MAX_LENGHT_RATIO"):
        knobs.gate_thresholds()
    settings.TRAINING_KNOBS = {"max_steps": "many"}
    with pytest.raises(ImproperlyConfigured, match="max_steps"):
        knobs.job_config(DPOJobConfig)
