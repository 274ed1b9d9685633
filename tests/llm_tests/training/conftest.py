"""Fixtures for the training jobs: small preference data and a tiny trained version."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm.training import DPOJobConfig, KTOJobConfig, RewardJobConfig, preference_row, train_dpo


def tiny_settings(config_class, **overrides):
    """A few quick steps on the tiny model."""
    values = {"max_steps": 2, "batch_size": 2, "max_length": 128}
    return config_class(**(values | overrides))


@pytest.fixture
def tiny_dpo_config() -> DPOJobConfig:
    return tiny_settings(DPOJobConfig)


@pytest.fixture
def tiny_kto_config() -> KTOJobConfig:
    return tiny_settings(KTOJobConfig)


@pytest.fixture
def tiny_reward_config() -> RewardJobConfig:
    return tiny_settings(RewardJobConfig)


def make_pairs(count: int, conversations: int = 4) -> list[dict]:
    return [
        preference_row(
            [{"role": "user", "content": f"Question number {index}?"}],
            f"Answer {index}. Have a nice day!",
            f"Answer {index}. Go away.",
            conversation_id=f"conversation-{index % conversations}",
        )
        for index in range(count)
    ]


@pytest.fixture(scope="session")
def tiny_pairs() -> list[dict]:
    return make_pairs(8)


@pytest.fixture(scope="session")
def tiny_dpo_version(tmp_path_factory, tiny_model_dir: Path, tiny_pairs) -> Path:
    """One DPO version on the tiny model, shared by tests that only read it."""
    output = tmp_path_factory.mktemp("versions") / "tiny-dpo"
    train_dpo(
        base_model=tiny_model_dir,
        pairs=tiny_pairs,
        output_dir=output,
        config=tiny_settings(DPOJobConfig),
    )
    return output


@pytest.fixture(scope="session")
def tiny_reward_version(tmp_path_factory, tiny_model_dir: Path, tiny_pairs):
    """A reward model trained for two steps: its scores are arbitrary but real."""
    from llm.training import train_reward_model

    output = tmp_path_factory.mktemp("reward") / "tiny-reward"
    return train_reward_model(
        base_model=tiny_model_dir,
        pairs=tiny_pairs,
        output_dir=output,
        config=tiny_settings(RewardJobConfig),
    )
