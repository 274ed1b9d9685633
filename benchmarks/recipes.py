"""The experiments behind the training defaults (docs/training.md), on the real model.

One shared set-up: 40 synthetic "polite" pairs (tests/llm_tests/training/
synthetic.py) with the app's default system prompt, 30 to train on and 10
held out. Then, each from the same start:

- KTO on the 30 pairs as 60 unpaired thumbs (up: the friendly reply, down: the
  curt one), at the learning rates given;
- online RL (RLOO) from the default DPO recipe's adapter, against a reward
  model trained on the same 30 pairs, with the settings given.

Each result prints the greedy trait rate on 20 questions no pair asks, the
guarded reward model's mean score of those greedy replies, their degenerate
share, the seconds it trained and a sample reply.

    .venv/bin/python benchmarks/recipes.py [--model PATH] [--only kto|rl]

Prints ``name: value`` lines; ends with ``recipe_trait_rate`` (the default RL
setting's trait rate after DPO then RL).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYSTEM_PROMPT = "You are a helpful, concise assistant."

# (name, knob overrides). rl_old: the settings before the reward guard (lr 1e-4, beta
# 0.05, raw reward-model scores, truncated replies in the loss); rl_guarded: the same
# with the guard; rl_default: OnlineRLJobConfig's defaults.
_OLD_RL = {"learning_rate": 1e-4, "beta": 0.05}
RL_SETTINGS = (
    ("rl_old", {**_OLD_RL, "guard_rewards": False, "mask_truncated_completions": False}),
    ("rl_guarded", _OLD_RL),
    ("rl_default", {}),
)
KTO_SETTINGS = (
    ("kto_1e-4", {"learning_rate": 1e-4}),
    ("kto_3e-4", {"learning_rate": 3e-4}),
)


def _data():
    from tests.llm_tests.training.synthetic import polite_pairs

    pairs = polite_pairs(0, 40)
    for pair in pairs:
        pair["prompt"] = [{"role": "system", "content": SYSTEM_PROMPT}, *pair["prompt"]]
    return pairs[:30], pairs[30:]


def _questions():
    from tests.llm_tests.training.synthetic import HELDOUT_QUESTIONS

    return [
        [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": q}]
        for q in HELDOUT_QUESTIONS
    ]


def measure(model: str, adapter: Path | None, reward) -> dict:
    """Greedy replies to the held-out questions: trait rate, guarded reward, degeneracy."""
    from llm.evaluation.generation import greedy_replies
    from llm.evaluation.scoring import load_scoring_model, prompt_ids
    from llm.training.versions import resolve_adapter
    from tests.llm_tests.training.synthetic import has_friendly_opening

    adapters = {"candidate": resolve_adapter(adapter)[0]} if adapter else {}
    scoring = load_scoring_model(model, adapters)
    questions = _questions()
    encoded = [prompt_ids(scoring.tokenizer, q) for q in questions]
    replies = greedy_replies(scoring, "candidate" if adapter else None, encoded, 48)
    scores = reward(
        prompts=questions,
        completions=[[{"role": "assistant", "content": r.text}] for r in replies],
        completion_ids=[r.token_ids for r in replies],
    )
    broken = sum(reward.broken(r.text, r.token_ids) for r in replies)
    return {
        "trait_rate": sum(has_friendly_opening(r.text) for r in replies) / len(replies),
        "reward_mean": sum(scores) / len(scores),
        "broken_share": broken / len(replies),
        "sample": replies[0].text.replace("\n", " ")[:90],
    }


def report(name: str, figures: dict, seconds: float | None = None) -> None:
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else repr(value)
        print(f"{name}_{key}: {shown}", flush=True)
    if seconds is not None:
        print(f"{name}_seconds: {seconds:.0f}", flush=True)


def main() -> None:
    from dataclasses import replace

    from llm.evaluation import evaluate_reward_model
    from llm.loading import resolve_model_path
    from llm.training import (
        DPOJobConfig,
        KTOJobConfig,
        OnlineRLJobConfig,
        RewardJobConfig,
        pairs_to_unpaired,
        train_dpo,
        train_kto,
        train_online_rl,
        train_reward_model,
    )
    from llm.training.guarded_reward import GuardedReward

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--only", choices=("kto", "rl"), default=None)
    options = parser.parse_args()
    model = options.model or resolve_model_path("smollm2", REPO / ".cache" / "models")
    work = Path(tempfile.mkdtemp(prefix="loopchat-recipes-"))
    train, heldout = _data()

    reward_dir = work / "reward"
    started = time.monotonic()
    train_reward_model(
        base_model=model,
        pairs=train,
        heldout_pairs=heldout,
        output_dir=reward_dir,
        config=RewardJobConfig(),
    )
    accuracy = evaluate_reward_model(reward_dir, heldout).accuracy
    print(f"reward_model_accuracy: {accuracy:.2f}", flush=True)
    print(f"reward_model_seconds: {time.monotonic() - started:.0f}", flush=True)
    guarded = GuardedReward(reward_dir)
    report("base", measure(model, None, guarded))

    if options.only in (None, "kto"):
        rows = pairs_to_unpaired(train)
        for name, knobs in KTO_SETTINGS:
            started = time.monotonic()
            out = work / name
            train_kto(
                base_model=model, rows=rows, output_dir=out, config=replace(KTOJobConfig(), **knobs)
            )
            report(name, measure(model, out, guarded), time.monotonic() - started)

    trait = None
    if options.only in (None, "rl"):
        dpo_dir = work / "dpo"
        started = time.monotonic()
        train_dpo(base_model=model, pairs=train, output_dir=dpo_dir, config=DPOJobConfig())
        report("dpo", measure(model, dpo_dir, guarded), time.monotonic() - started)
        for name, knobs in RL_SETTINGS:
            started = time.monotonic()
            out = work / name
            train_online_rl(
                base_model=model,
                reward_model=reward_dir,
                prompts=[row["prompt"] for row in train],
                output_dir=out,
                parent=dpo_dir,
                config=replace(OnlineRLJobConfig(), **knobs),
            )
            figures = measure(model, out, guarded)
            report(name, figures, time.monotonic() - started)
            if name == "rl_default":
                trait = figures["trait_rate"]
    if trait is not None:
        print(f"recipe_trait_rate: {trait:.2f}")


if __name__ == "__main__":
    main()
