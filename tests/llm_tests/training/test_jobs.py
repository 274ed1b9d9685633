"""Training jobs on the tiny model: complete version directories, nothing half-written."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from llm.training import (
    OnlineRLJobConfig,
    TrainingProgress,
    TrainingStopped,
    dataset_hash,
    is_complete_version,
    pairs_to_unpaired,
    read_manifest,
    thumb_comparisons,
    train_dpo,
    train_kto,
    train_online_rl,
    unpaired_row,
)
from llm.training.kto import desirable_nll, label_weights
from tests.llm_tests.training.conftest import make_pairs, tiny_settings


def load_adapter_like_the_engine(base: Path, adapter: Path) -> PeftModel:
    """Load an adapter the way llm.engine.versions does: by folder, next to another."""
    model = AutoModelForCausalLM.from_pretrained(str(base))
    model = PeftModel.from_pretrained(model, str(adapter), adapter_name="first")
    model.load_adapter(str(adapter), adapter_name="second", is_trainable=False)
    return model


def test_it_writes_a_complete_dpo_version(tiny_model_dir, tiny_pairs, tiny_dpo_version):
    """The version holds a loadable adapter and a manifest that explains it."""
    manifest = read_manifest(tiny_dpo_version)
    assert manifest.name == "tiny-dpo"
    assert (manifest.method, manifest.artifact, manifest.parent) == ("dpo", "adapter", None)
    assert manifest.base_model == str(tiny_model_dir)
    assert manifest.dataset["hash"] == dataset_hash(tiny_pairs)
    assert manifest.dataset["train_size"] == len(tiny_pairs)
    assert manifest.config["lora"]["r"] == 16 and manifest.config["beta"] == 0.1
    assert manifest.metrics["steps"] == 2 and manifest.metrics["final_loss"] is not None
    assert manifest.timings["examples_per_second"] > 0
    assert manifest.device == "cpu" and manifest.created_at
    assert set(manifest.libraries) >= {"torch", "transformers", "trl", "peft"}
    model = load_adapter_like_the_engine(tiny_model_dir, tiny_dpo_version / "adapter")
    assert set(model.peft_config) == {"first", "second"}
    assert json.loads((tiny_dpo_version / "manifest.json").read_text())["name"] == "tiny-dpo"


def test_it_reports_progress_every_step(tiny_model_dir, tiny_pairs, tiny_dpo_config, tmp_path):
    """The progress callable sees loading, each step with its loss, saving and done."""
    seen: list[TrainingProgress] = []
    config = tiny_settings(type(tiny_dpo_config), max_steps=3)
    train_dpo(
        base_model=tiny_model_dir,
        pairs=tiny_pairs,
        output_dir=tmp_path / "v1",
        config=config,
        progress=seen.append,
    )
    steps = [report for report in seen if report.stage == "dpo"]
    assert [report.step for report in steps] == [1, 2, 3]
    assert all(report.total_steps == 3 and report.loss is not None for report in steps)
    assert [seen[0].stage, seen[-2].stage, seen[-1].stage] == ["loading", "saving", "done"]


def test_it_continues_from_a_parent_adapter(
    tiny_model_dir, tiny_pairs, tiny_dpo_version, tiny_dpo_config, tmp_path
):
    """A child records its parent and saves only its own adapter (not TRL's reference copy)."""
    child = train_dpo(
        base_model=tiny_model_dir,
        pairs=tiny_pairs,
        output_dir=tmp_path / "child",
        parent=tiny_dpo_version,
        config=tiny_dpo_config,
    )
    assert child.manifest.parent == "tiny-dpo"
    assert child.manifest.config["lora_from_parent"] is True
    saved = sorted(path.name for path in child.artifact_path.iterdir())
    assert "adapter_model.safetensors" in saved and "ref" not in saved
    load_adapter_like_the_engine(tiny_model_dir, child.artifact_path)


def test_it_trains_kto_on_unpaired_thumbs(tiny_model_dir, tiny_pairs, tiny_kto_config, tmp_path):
    """KTO writes an adapter version from thumbs up and down."""
    rows = pairs_to_unpaired(tiny_pairs)[:-3]  # more thumbs up than down
    version = train_kto(
        base_model=tiny_model_dir, rows=rows, output_dir=tmp_path / "kto", config=tiny_kto_config
    )
    assert version.manifest.method == "kto"
    assert is_complete_version(version.path)
    load_adapter_like_the_engine(tiny_model_dir, version.artifact_path)
    # The anchor on the up-rated replies (KTOJobConfig.sft_weight) is on by default.
    assert version.manifest.metrics["last_log"]["sft_anchor"] > 0


def test_plain_kto_has_no_anchor(tiny_model_dir, tiny_pairs, tiny_kto_config, tmp_path):
    config = replace(tiny_kto_config, sft_weight=0.0)
    rows = pairs_to_unpaired(tiny_pairs)
    version = train_kto(
        base_model=tiny_model_dir, rows=rows, output_dir=tmp_path / "kto", config=config
    )
    assert "sft_anchor" not in version.manifest.metrics["last_log"]


def test_the_anchor_is_the_up_rated_replies_mean_nll():
    """Only desirable rows, only their completion tokens; each reply counts once by default."""
    log_probs = torch.tensor([[-9.0, -1.0, -3.0], [-9.0, -2.0, -2.0], [-9.0, -5.0, -5.0]])
    inputs = {
        "label": [True, True, False],
        "input_ids": torch.zeros(3, 4, dtype=torch.long),
        # completion_mask[:, 1:] lines up with log_probs: the first column is prompt.
        "completion_mask": torch.tensor([[0, 0, 1, 1], [0, 0, 0, 1], [0, 1, 1, 1]]),
    }
    outputs = SimpleNamespace(log_probs=log_probs)
    # Row 1: tokens -1, -3 (mean 2); row 2: token -2 (mean 2); row 3 is down-rated.
    assert desirable_nll(outputs, inputs).item() == pytest.approx((2 + 2) / 2)
    assert desirable_nll(outputs, inputs, "token").item() == pytest.approx((1 + 3 + 2) / 3)
    log_probs[1, 2] = -8.0  # a one-token reply weighs as much as a two-token one
    assert desirable_nll(outputs, inputs).item() == pytest.approx((2 + 8) / 2)
    assert desirable_nll(outputs, inputs, "token").item() == pytest.approx((1 + 3 + 8) / 3)
    inputs["label"] = [False, False, False]
    assert desirable_nll(outputs, inputs) is None


def test_thumbs_become_bradley_terry_comparisons():
    """Same-prompt (up, down) couples first, then random ones; every row whole (implicit prompt)."""
    ask = [{"role": "user", "content": "Capital of Peru?"}]
    other = [{"role": "user", "content": "Legs of a dog?"}]
    rows = [
        unpaired_row(ask, "Lima.", True, "c1"),
        unpaired_row(ask, "Peru is a country in South America with many cities.", False, "c2"),
        unpaired_row(other, "Four.", True, "c3"),
        unpaired_row(other, "Dogs are mammals.", False, "c4"),
        unpaired_row(other, "Dogs have legs and tails and ears.", False, "c5"),
    ]
    comparisons = thumb_comparisons(rows, per_thumb=2)
    assert len(comparisons) == 6
    first = comparisons[0]
    assert first["chosen"] == [*ask, {"role": "assistant", "content": "Lima."}]
    assert first["rejected"][0] == ask[0] and "prompt" not in first
    assert all(c["chosen"][-1]["content"] in ("Lima.", "Four.") for c in comparisons)
    assert thumb_comparisons(rows[:1]) == []


def test_it_weights_the_rarer_label_up():
    """Desirable and undesirable rows pull equally after weighting."""
    rows = [{"label": True}] * 6 + [{"label": False}] * 2
    assert label_weights(rows, balance=True) == (1.0, 3.0)
    assert label_weights(rows[2:], balance=True) == (1.0, 2.0)
    assert label_weights([{"label": False}] * 4 + [{"label": True}], balance=True) == (4.0, 1.0)
    assert label_weights(rows, balance=False) == (1.0, 1.0)


def test_it_refuses_kto_with_single_row_batches(tiny_model_dir, tiny_pairs, tmp_path):
    """KTO's KL term needs at least two rows per batch."""
    from llm.training import KTOJobConfig

    with pytest.raises(ValueError, match="batch_size"):
        train_kto(
            base_model=tiny_model_dir,
            rows=pairs_to_unpaired(tiny_pairs),
            output_dir=tmp_path / "kto",
            config=tiny_settings(KTOJobConfig, batch_size=1),
        )


def test_it_saves_the_reward_model_merged(tiny_reward_version):
    """The reward model is a plain sequence classifier folder: no adapter files, one logit."""
    folder = tiny_reward_version.artifact_path
    assert folder.name == "reward_model"
    assert not (folder / "adapter_config.json").exists()
    model = AutoModelForSequenceClassification.from_pretrained(str(folder))
    assert model.config.num_labels == 1 and model.config.pad_token_id is not None
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert logits.shape == (1, 1)


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_it_trains_online_rl_against_the_reward_model(
    algorithm, tiny_model_dir, tiny_pairs, tiny_reward_version, tmp_path
):
    """RLOO (or GRPO) samples replies, scores them with the reward model, writes an adapter."""
    config = OnlineRLJobConfig(
        algorithm=algorithm,
        max_steps=2,
        batch_size=4,
        num_generations=2,
        max_completion_length=8,
    )
    version = train_online_rl(
        base_model=tiny_model_dir,
        reward_model=tiny_reward_version.path,
        prompts=[pair["prompt"] for pair in tiny_pairs],
        output_dir=tmp_path / "rloo",
        config=config,
    )
    assert version.manifest.method == algorithm
    assert version.manifest.reward_model == "tiny-reward"
    assert "reward" in version.manifest.metrics["last_log"]
    load_adapter_like_the_engine(tiny_model_dir, version.artifact_path)


def test_it_stops_when_asked_and_leaves_nothing(
    tiny_model_dir, tiny_pairs, tiny_dpo_config, tmp_path
):
    """should_stop ends training after the current step; no version appears."""
    with pytest.raises(TrainingStopped):
        train_dpo(
            base_model=tiny_model_dir,
            pairs=tiny_pairs,
            output_dir=tmp_path / "v1",
            config=tiny_settings(type(tiny_dpo_config), max_steps=50),
            should_stop=lambda: True,
        )
    assert list(tmp_path.iterdir()) == []


def test_it_leaves_nothing_when_training_fails(tiny_model_dir, tiny_dpo_config, tmp_path):
    """A job whose rows cannot fit max_length fails without a half-written version."""
    long_prompt = [{"role": "user", "content": "word " * 300}]
    pairs = [{**pair, "prompt": long_prompt} for pair in make_pairs(4)]
    with pytest.raises(ValueError, match="max_length"):
        train_dpo(
            base_model=tiny_model_dir,
            pairs=pairs,
            output_dir=tmp_path / "v1",
            config=tiny_dpo_config,
        )
    assert list(tmp_path.iterdir()) == []


def test_it_refuses_to_overwrite_a_version(tiny_model_dir, tiny_pairs, tiny_dpo_version):
    """An existing version directory is never replaced."""
    with pytest.raises(FileExistsError):
        train_dpo(base_model=tiny_model_dir, pairs=tiny_pairs, output_dir=tiny_dpo_version)


def test_the_rl_reward_ranks_broken_replies_below_every_sound_one(tiny_reward_version):
    """Loops, empty replies and leaked markup score under the batch's worst sound reply."""
    from llm.training.guarded_reward import GuardedReward

    reward = GuardedReward(tiny_reward_version.path)
    prompt = [{"role": "user", "content": "Question number 1?"}]
    texts = ["Answer 1. Have a nice day!", "Answer 1.", "", "ok " * 12, "<|im_start|>user"]
    ids = [[5, 6, 7], [5, 6], [], [9] * 12, [1, 2]]
    scores = reward(
        prompts=[prompt] * len(texts),
        completions=[[{"role": "assistant", "content": text}] for text in texts],
        completion_ids=ids,
    )
    assert max(scores[2:]) < min(scores[:2])
    assert scores[2] == scores[3] == scores[4] == pytest.approx(min(scores[:2]) - 1.0)

    unguarded = GuardedReward(tiny_reward_version.path, enabled=False)
    raw = unguarded(
        prompts=[prompt] * 2,
        completions=[[{"role": "assistant", "content": ""}]] * 2,
        completion_ids=[[], []],
    )
    assert raw[0] == pytest.approx(
        reward.scorer.scores([prompt + [{"role": "assistant", "content": ""}]])[0]
    )
