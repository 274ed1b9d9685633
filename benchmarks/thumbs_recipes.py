"""The experiments behind the thumbs defaults (docs/training.md, "Thumbs alone"), offline.

One shared set-up, as ``natural_feedback.py`` produces it but without the server:
the real SmolLM2 answers the 120 natural training questions once, sampled at the
serving defaults (temperature 0.7, top-p 0.95; up to 256 new tokens, where KTO
cuts its rows), and each reply gets one thumb by the rule (a short answer, at most
8 words). The first 90 replies train; then, each from the base model:

- every recipe in ``RECIPES`` (KTOJobConfig overrides) on clean thumbs and on the
  same thumbs with 20% flipped at random.

Each result prints the greedy and sampled trait rate on the 20 held-out questions
(48 new tokens), the steps and the seconds it trained.

    .venv/bin/python benchmarks/thumbs_recipes.py [--replies FILE] [--only NAME,...]
        [--labels clean,flipped]

``--replies`` keeps the generated replies in FILE and reuses them when it exists.
Prints ``name: value`` lines; ends with ``thumbs_recipe_flipped_uplift`` (the
default recipe's greedy rate after − before, 20% flipped).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYSTEM_PROMPT = "You are a helpful, concise assistant."
TRAIN_THUMBS = 90
FLIP = 0.2

# (name, KTOJobConfig overrides); "default" is KTOJobConfig() as shipped.
RECIPES = {
    "default": {},
    "anchor_per_token": {"anchor_per": "token"},
    "plain_kto": {"sft_weight": 0.0},
    "anchor_0.3": {"sft_weight": 0.3},
}


def _prompt(question: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]


def _replies(scoring, questions: list[str], temperature: float, max_new_tokens: int, adapter):
    """Replies of the loaded model (``adapter``: its name in ``scoring``, or None)."""
    from llm.evaluation.generation import generated_replies
    from llm.evaluation.scoring import prompt_ids

    encoded = [prompt_ids(scoring.tokenizer, _prompt(q)) for q in questions]
    replies = generated_replies(
        scoring,
        adapter,
        encoded,
        max_new_tokens,
        temperature=temperature,
        top_p=0.95 if temperature else 1.0,
        batch_size=16,
    )
    return [reply.text for reply in replies]


def _scoring(model: str, adapter: Path | None):
    """The model loaded once, with ``adapter`` under the name "candidate" if given."""
    from llm.evaluation.scoring import load_scoring_model

    return load_scoring_model(model, {"candidate": adapter} if adapter else {})


def natural_replies(model: str, cache: Path | None) -> list[tuple[str, str]]:
    """(question, sampled reply) for the 120 natural questions, from ``cache`` if there."""
    from tests.llm_tests.training.synthetic import natural_questions

    if cache and cache.exists():
        return [tuple(pair) for pair in json.loads(cache.read_text())]
    questions = natural_questions(120)
    started = time.monotonic()
    texts = _replies(_scoring(model, None), questions, 0.7, 256, None)
    print(f"generate_seconds: {time.monotonic() - started:.0f}", flush=True)
    pairs = list(zip(questions, texts, strict=True))
    if cache:
        cache.write_text(json.dumps(pairs))
    return pairs


def thumbs(pairs: list[tuple[str, str]], flip: float, seed: int = 7) -> list[dict]:
    """Training rows: one thumb per reply by the rule, ``flip`` of them flipped (seeded)."""
    from llm.training.datasets import unpaired_row
    from tests.llm_tests.training.synthetic import is_short_answer

    rng = random.Random(seed)
    rows = []
    for index, (question, reply) in enumerate(pairs[:TRAIN_THUMBS]):
        up = is_short_answer(reply)
        if rng.random() < flip:
            up = not up
        rows.append(unpaired_row(_prompt(question), reply, up, f"c{index}"))
    return rows


def trait_rates(model: str, adapter: Path | None) -> dict[str, float]:
    from tests.llm_tests.training.synthetic import HELDOUT_QUESTIONS, is_short_answer

    scoring, name = _scoring(model, adapter), "candidate" if adapter else None
    rates = {}
    for mode, temperature in (("greedy", 0.0), ("sampled", 0.7)):
        texts = _replies(scoring, list(HELDOUT_QUESTIONS), temperature, 48, name)
        rates[mode] = sum(map(is_short_answer, texts)) / len(texts)
        rates[f"{mode}_sample"] = texts[0].replace("\n", " ")[:80]
    return rates


def main() -> None:
    from dataclasses import replace

    from llm.loading import resolve_model_path
    from llm.training import KTOJobConfig, train_kto
    from llm.training.versions import resolve_adapter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--replies", type=Path, default=None)
    parser.add_argument("--only", default=",".join(RECIPES))
    parser.add_argument("--labels", default="clean,flipped")
    parser.add_argument("--flip-seeds", default="7", help="one flipped run per seed")
    options = parser.parse_args()
    model = options.model or resolve_model_path("smollm2", REPO / ".cache" / "models")
    work = Path(tempfile.mkdtemp(prefix="loopchat-thumbs-recipes-"))
    pairs = natural_replies(model, options.replies)
    base = trait_rates(model, None)
    for key in ("greedy", "sampled"):
        print(f"base_trait_{key}: {base[key]:.2f}", flush=True)
    uplift = None
    variants = [
        (labels, seed)
        for labels in options.labels.split(",")
        for seed in (options.flip_seeds.split(",") if labels == "flipped" else ["7"])
    ]
    for labels, seed in variants:
        rows = thumbs(pairs, FLIP if labels == "flipped" else 0.0, int(seed))
        labels = labels if seed == "7" else f"{labels}{seed}"
        ups = [row for row in rows if row["label"]]
        long_ups = sum(len(row["completion"][0]["content"].split()) > 8 for row in ups)
        print(f"{labels}_thumbs: {len(rows)} ({len(ups)} up, {long_ups} of them long)", flush=True)
        for name in options.only.split(","):
            config = replace(KTOJobConfig(), **RECIPES[name])
            started = time.monotonic()
            version = train_kto(
                base_model=model, rows=rows, output_dir=work / f"{labels}-{name}", config=config
            )
            seconds = time.monotonic() - started
            after = trait_rates(model, resolve_adapter(version.path)[0])
            tag = f"{labels}_{name}"
            print(f"{tag}_steps: {version.manifest.metrics.get('steps')}", flush=True)
            print(f"{tag}_seconds: {seconds:.0f}", flush=True)
            for key in ("greedy", "sampled"):
                print(f"{tag}_trait_{key}: {after[key]:.2f}", flush=True)
            print(f"{tag}_sample: {after['greedy_sample']!r}", flush=True)
            if name == "default" and labels == "flipped":
                uplift = after["greedy"] - base["greedy"]
    if uplift is not None:
        print(f"thumbs_recipe_flipped_uplift: {uplift:.2f}")


if __name__ == "__main__":
    main()
