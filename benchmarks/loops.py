"""Greedy loops: how often do the real SmolLM2's greedy replies repeat themselves?

The prompts the learning benchmarks ask (the 80 questions of
tests/llm_tests/training/synthetic.py: 20 held out, 60 for training), with the
app's default system prompt, answered greedily up to 256 new tokens, with each
setting in ``SETTINGS``: nothing, transformers' repetition penalty, and
LoopChat's n-gram block on the reply's own tokens (``llm.sampling``; ``default``
is the size served and gated). A reply loops when one n-gram of at most 4
tokens covers half of it (the gate's rule, llm/evaluation/degeneracy.py).

    .venv/bin/python benchmarks/loops.py [--only NAME,...] [--max-new-tokens 256]

Prints per setting the loop share, the share cut at the length cap, the mean
reply length, the short-answer rate (the thumbs benchmark's rule) and the
seconds; ends with ``greedy_loop_rate_before`` (no rule) and ``greedy_loop_rate``
(the default).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from statistics import fmean

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYSTEM_PROMPT = "You are a helpful, concise assistant."
SETTINGS = {
    "none": {"no_repeat_ngram_size": 0},
    "penalty_1.1": {"repetition_penalty": 1.1, "no_repeat_ngram_size": 0},
    "penalty_1.2": {"repetition_penalty": 1.2, "no_repeat_ngram_size": 0},
    "ngram_6": {"no_repeat_ngram_size": 6},
    "default": {},  # llm.sampling.NO_REPEAT_NGRAM_SIZE, as served and gated
}


def questions() -> list[str]:
    from tests.llm_tests.training.synthetic import (
        HELDOUT_QUESTIONS,
        MORE_QUESTIONS,
        QUESTIONS_AND_ANSWERS,
    )

    return [*HELDOUT_QUESTIONS, *(q for q, _ in QUESTIONS_AND_ANSWERS), *MORE_QUESTIONS]


def main() -> None:
    from llm.evaluation.degeneracy import degeneracy_reasons
    from llm.evaluation.generation import generated_replies
    from llm.evaluation.scoring import load_scoring_model, prompt_ids
    from llm.evaluation.thresholds import GateThresholds
    from llm.loading import resolve_model_path
    from tests.llm_tests.training.synthetic import is_short_answer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SETTINGS))
    parser.add_argument("--max-new-tokens", type=int, default=256)
    options = parser.parse_args()
    model = resolve_model_path("smollm2", REPO / ".cache" / "models")
    scoring = load_scoring_model(model, {})
    asked = questions()
    prompts = [
        [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": q}]
        for q in asked
    ]
    encoded = [prompt_ids(scoring.tokenizer, prompt) for prompt in prompts]
    thresholds = GateThresholds()
    print(f"prompts: {len(encoded)}", flush=True)
    rates = {}
    for name in options.only.split(","):
        started = time.monotonic()
        replies = generated_replies(
            scoring, None, encoded, options.max_new_tokens, batch_size=16, **SETTINGS[name]
        )
        seconds = time.monotonic() - started
        reasons = [degeneracy_reasons(reply, thresholds) for reply in replies]
        loops = fmean("repetition" in r for r in reasons)
        print(f"{name}_loop_rate: {loops:.3f}", flush=True)
        print(f"{name}_length_cap_rate: {fmean('length_cap' in r for r in reasons):.3f}")
        print(f"{name}_mean_tokens: {fmean(len(reply.token_ids) for reply in replies):.1f}")
        print(f"{name}_short_answer_rate: {fmean(is_short_answer(r.text) for r in replies):.3f}")
        print(f"{name}_seconds: {seconds:.0f}")
        looped = [r.text for r, why in zip(replies, reasons, strict=True) if "repetition" in why]
        print(f"{name}_a_loop: {(looped or [''])[0][:100]!r}", flush=True)
        rates[name] = loops
    if "none" in rates:
        print(f"greedy_loop_rate_before: {rates['none']:.3f}")
    if "default" in rates:
        print(f"greedy_loop_rate: {rates['default']:.3f}")


if __name__ == "__main__":
    main()
