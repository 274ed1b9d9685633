"""The promotion gate: a candidate adapter replaces its parent only if every check passes.

``measure_candidate`` runs the models once; ``judge`` turns the measurements
into checks and is pure, so each check can be tested on hand-made numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from transformers import PreTrainedTokenizerBase

from llm.engine.base import Engine
from llm.evaluation.degeneracy import degeneracy_reasons, degenerate_share
from llm.evaluation.engine_replies import ReplyWriter, engine_writer, transformers_writer
from llm.evaluation.generation import Reply, reply_sequence, stop_token_ids
from llm.evaluation.probes import degenerate_probes
from llm.evaluation.prompts import DEFAULT_REGRESSION_PROMPTS, as_messages
from llm.evaluation.report import Check, GateReport
from llm.evaluation.reward import RewardScorer
from llm.evaluation.scoring import (
    completion_sequence,
    drift,
    load_scoring_model,
    prompt_ids,
    summed_log_probs,
)
from llm.evaluation.thresholds import GateThresholds
from llm.evaluation.thumbs import ThumbScores, thumb_scores, thumbs_checks, thumbs_metrics
from llm.training.datasets import Message
from llm.training.progress import ProgressFn, TrainingProgress
from llm.training.versions import resolve_adapter

PARENT, CANDIDATE = "parent", "candidate"
GREEDY, SAMPLED = "greedy", "sampled"


@dataclass
class Answered:
    """One held-out prompt answered by the parent and by the candidate, in one mode."""

    prompt: list[Message]
    mode: str  # GREEDY or SAMPLED (the serving defaults: GateThresholds.heldout_*)
    parent: Reply
    candidate: Reply
    # The run's reward model's scores of each reply; None when no reward model judged.
    parent_score: float | None = None
    candidate_score: float | None = None


@dataclass
class CandidateMeasurements:
    parent_margins: list[float]  # log p(chosen) - log p(rejected) per held-out pair
    candidate_margins: list[float]
    drift: dict[str, float]  # kl_per_token, parent/candidate_nll_per_token, tokens
    prompts: list[list[Message]]
    parent_replies: list[Reply]
    candidate_replies: list[Reply]
    # Per probe kind ("empty", "loop"): log p gain (candidate - parent) of each probe, both
    # log p raised to the floor first (GateThresholds.degenerate_probe_floor).
    probe_gains: dict[str, list[float]] = field(default_factory=dict)
    # The held-out pairs' own replies, tokenized like generated ones: what the feedback asked for.
    chosen_replies: list[Reply] = field(default_factory=list)
    rejected_replies: list[Reply] = field(default_factory=list)
    # Held-out prompts (from held-out conversations) answered by both, greedy and sampled.
    answered: list[Answered] = field(default_factory=list)
    judged_by_reward_model: bool = False
    # Held-out thumbs: each reply's label and log-likelihood under both models.
    thumbs: ThumbScores | None = None


class GateSteps:
    """The gate's work as numbered parts, each reported as it starts.

    ``progress`` gets ``TrainingProgress(stage=<part>, step=<parts done>, total_steps=...)``:
    a run reads "evaluating kto: held-out replies, sampled, candidate · step 8 of 12".
    """

    PARTS = (
        "loading the models",
        "held-out pairs' likelihood",
        "regression replies, in service",
        "regression replies, candidate",
        "held-out thumbs' likelihood",
        f"held-out replies, {GREEDY}, in service",
        f"held-out replies, {GREEDY}, candidate",
        f"held-out replies, {SAMPLED}, in service",
        f"held-out replies, {SAMPLED}, candidate",
        "drift on regression replies",
        "degenerate probes",
    )
    REWARD_PART = "reward model scoring replies"

    def __init__(self, progress: ProgressFn | None, with_reward_model: bool):
        self.progress = progress
        self.parts = [*self.PARTS, *([self.REWARD_PART] if with_reward_model else [])]
        self.done = 0

    def start(self, part: str) -> None:
        """``part`` begins; the ones before it are done."""
        self.done = self.parts.index(part)
        self._report(part)

    def finish(self) -> None:
        self.done = len(self.parts)
        self._report("done")

    def _report(self, part: str) -> None:
        if self.progress is not None:
            self.progress(TrainingProgress(part, self.done, len(self.parts)))


def evaluate_candidate(
    *,
    base_model: str | Path,
    parent: str | Path | None,
    candidate: str | Path,
    heldout_pairs: Sequence[Mapping[str, Any]],
    heldout_thumbs: Sequence[Mapping[str, Any]] = (),
    regression_prompts: Sequence[str | list[Message]] = DEFAULT_REGRESSION_PROMPTS,
    thresholds: GateThresholds | None = None,
    reward_model: str | Path | None = None,
    progress: ProgressFn | None = None,
    engine: Callable[[], Engine] | None = None,
) -> GateReport:
    """Compare ``candidate`` with ``parent`` (``None``: the base model) and decide.

    ``parent`` and ``candidate`` are version directories or adapter folders on ``base_model``;
    ``heldout_thumbs`` are unpaired rows (``prompt``, ``completion``, ``label``) from
    held-out conversations; ``reward_model``, one that passed its own evaluation (trained
    on pairs or on thumbs), judges their generated replies. ``progress`` hears each part
    of the work as it starts (``GateSteps``). ``engine`` makes the engine that serves
    users (the llama.cpp engine for a model with a GGUF file): the gate's replies are
    then written by it, so the gate judges what users get; without it, by the gate's
    own transformers model.
    """
    thresholds = thresholds or GateThresholds()
    measurements = measure_candidate(
        base_model=base_model,
        parent=parent,
        candidate=candidate,
        heldout_pairs=heldout_pairs,
        heldout_thumbs=heldout_thumbs,
        regression_prompts=regression_prompts,
        thresholds=thresholds,
        reward_model=reward_model,
        progress=progress,
        engine=engine,
    )
    return judge(measurements, thresholds)


def measure_candidate(
    *,
    base_model: str | Path,
    parent: str | Path | None,
    candidate: str | Path,
    heldout_pairs: Sequence[Mapping[str, Any]],
    regression_prompts: Sequence[str | list[Message]],
    thresholds: GateThresholds,
    reward_model: str | Path | None = None,
    heldout_thumbs: Sequence[Mapping[str, Any]] = (),
    progress: ProgressFn | None = None,
    engine: Callable[[], Engine] | None = None,
) -> CandidateMeasurements:
    steps = GateSteps(progress, reward_model is not None)
    steps.start("loading the models")
    adapters = {CANDIDATE: resolve_adapter(candidate)[0]}
    if parent is not None:
        adapters[PARENT] = resolve_adapter(parent)[0]
    scoring = load_scoring_model(base_model, adapters)
    serving = engine() if engine else None
    try:
        if serving is None:
            write = transformers_writer(scoring)
        else:
            folders = {name: str(folder) for name, folder in adapters.items()}
            write = engine_writer(serving, folders, _decoder(scoring.tokenizer))
        return _measure(
            scoring, write, parent, heldout_pairs, regression_prompts, thresholds,
            reward_model, heldout_thumbs, steps,
        )  # fmt: skip
    finally:
        if serving is not None:
            serving.close()


def _measure(
    scoring,
    write: ReplyWriter,
    parent: str | Path | None,
    heldout_pairs: Sequence[Mapping[str, Any]],
    regression_prompts: Sequence[str | list[Message]],
    thresholds: GateThresholds,
    reward_model: str | Path | None,
    heldout_thumbs: Sequence[Mapping[str, Any]],
    steps: GateSteps,
) -> CandidateMeasurements:
    parent_name = PARENT if parent is not None else None
    steps.start("held-out pairs' likelihood")
    parent_margins, candidate_margins = _heldout_margins(scoring, parent_name, heldout_pairs)
    prompts = [as_messages(prompt) for prompt in regression_prompts]
    encoded = [prompt_ids(scoring.tokenizer, prompt) for prompt in prompts]
    max_new_tokens = thresholds.max_new_tokens
    steps.start("regression replies, in service")
    parent_replies = write(parent_name, prompts, max_new_tokens)
    steps.start("regression replies, candidate")
    candidate_replies = write(CANDIDATE, prompts, max_new_tokens)
    steps.start("held-out thumbs' likelihood")
    thumbs = thumb_scores(scoring, parent_name, CANDIDATE, heldout_thumbs)
    answered = _answer_heldout(
        write, parent_name, [*heldout_pairs, *heldout_thumbs], thresholds, steps
    )
    steps.start("drift on regression replies")
    stops = stop_token_ids(scoring)
    on_parent_replies = [
        (head, reply_sequence(reply, stops))
        for head, reply in zip(encoded, parent_replies, strict=True)
        if reply.token_ids or reply.finished
    ]
    probes = degenerate_probes(scoring.tokenizer, encoded, parent_replies, stops)
    chosen_replies, rejected_replies = _feedback_replies(
        scoring.tokenizer, heldout_pairs, heldout_thumbs
    )
    measured_drift = drift(scoring, parent_name, CANDIDATE, on_parent_replies)
    steps.start("degenerate probes")
    floor = math.log(thresholds.degenerate_probe_floor)
    gains = {kind: _gains(scoring, parent_name, seqs, floor) for kind, seqs in probes.items()}
    del scoring  # the reward model needs the memory more
    if reward_model is not None:
        steps.start(GateSteps.REWARD_PART)
        _score_answers(RewardScorer(reward_model), answered)
    steps.finish()
    return CandidateMeasurements(
        parent_margins=parent_margins,
        candidate_margins=candidate_margins,
        drift=measured_drift,
        prompts=prompts,
        parent_replies=parent_replies,
        candidate_replies=candidate_replies,
        probe_gains=gains,
        chosen_replies=chosen_replies,
        rejected_replies=rejected_replies,
        answered=answered,
        judged_by_reward_model=reward_model is not None,
        thumbs=thumbs,
    )


def _decoder(tokenizer: PreTrainedTokenizerBase) -> Callable[[list[int]], str]:
    """Reply text as ``generated_replies`` decodes it: special tokens kept, so leaked
    chat markup stays visible to the degeneracy checks."""
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=False)


def heldout_prompts(rows: Sequence[Mapping[str, Any]], limit: int) -> list[list[Message]]:
    """The held-out rows' distinct prompts (system prompt included), at most ``limit``."""
    prompts: dict[str, list[Message]] = {}
    for row in rows:
        prompt = [dict(message) for message in row["prompt"]]
        prompts.setdefault(repr(prompt), prompt)
    return list(prompts.values())[:limit]


def _answer_heldout(
    write: ReplyWriter,
    parent: str | None,
    rows: Sequence[Mapping[str, Any]],
    t: GateThresholds,
    steps: GateSteps,
) -> list[Answered]:
    """Both models answer each held-out prompt greedily and sampled, as served replies are."""
    prompts = heldout_prompts(rows, t.max_heldout_prompts)
    answered = []
    for mode, temperature in ((GREEDY, 0.0), (SAMPLED, t.heldout_temperature)):
        replies = []
        for name, who in ((parent, "in service"), (CANDIDATE, "candidate")):
            steps.start(f"held-out replies, {mode}, {who}")
            replies.append(
                write(
                    name,
                    prompts,
                    t.max_new_tokens,
                    temperature=temperature,
                    top_p=t.heldout_top_p,
                    seed=t.heldout_seed,
                )
            )
        answered.extend(
            Answered(prompt, mode, before, after)
            for prompt, before, after in zip(prompts, *replies, strict=True)
        )
    return answered


def _score_answers(scorer: RewardScorer, answered: list[Answered]) -> None:
    parent = scorer.scores([a.prompt + [_assistant(a.parent)] for a in answered])
    candidate = scorer.scores([a.prompt + [_assistant(a.candidate)] for a in answered])
    for item, before, after in zip(answered, parent, candidate, strict=True):
        item.parent_score, item.candidate_score = before, after


def _assistant(reply: Reply) -> Message:
    return {"role": "assistant", "content": reply.text}


def _heldout_margins(
    scoring, parent: str | None, pairs: Sequence[Mapping[str, Any]]
) -> tuple[list[float], list[float]]:
    """log p(chosen) - log p(rejected) per pair, under the parent and under the candidate."""
    tokenizer = scoring.tokenizer
    chosen = [completion_sequence(tokenizer, p["prompt"], p["chosen"]) for p in pairs]
    rejected = [completion_sequence(tokenizer, p["prompt"], p["rejected"]) for p in pairs]
    margins = []
    for name in (parent, CANDIDATE):
        chosen_scores = summed_log_probs(scoring, name, chosen)
        rejected_scores = summed_log_probs(scoring, name, rejected)
        margins.append([c - r for c, r in zip(chosen_scores, rejected_scores, strict=True)])
    return margins[0], margins[1]


def _feedback_replies(
    tokenizer: PreTrainedTokenizerBase,
    pairs: Sequence[Mapping[str, Any]],
    thumbs: Sequence[Mapping[str, Any]] = (),
) -> tuple[list[Reply], list[Reply]]:
    """What the feedback asked for and against, as finished ``Reply``s.

    Each pair's chosen and rejected reply, then the up-rated and the down-rated thumbs'.
    """
    chosen = [pair["chosen"] for pair in pairs] + [r["completion"] for r in thumbs if r["label"]]
    rejected = [pair["rejected"] for pair in pairs] + [
        r["completion"] for r in thumbs if not r["label"]
    ]
    return (
        [_written_reply(tokenizer, completion) for completion in chosen],
        [_written_reply(tokenizer, completion) for completion in rejected],
    )


def _written_reply(tokenizer: PreTrainedTokenizerBase, completion: Sequence[Message]) -> Reply:
    # The reply's own tokens, without the template's end-of-turn: what Reply.token_ids holds.
    text = "\n".join(message["content"] for message in completion)
    token_ids = tuple(tokenizer.encode(text, add_special_tokens=False))
    return Reply(text=text, token_ids=token_ids, finished=True)


def _gains(scoring, parent: str | None, sequences, floor: float) -> list[float]:
    """log p gain per probe, counting only what rises above ``floor`` (a log probability).

    An empty reply going from one chance in 10^8 to one in 10^4 is a large gain in
    nats and no degeneracy: nobody would ever see it. (Seen: a candidate trained on
    feedback with a fifth of the labels flipped gained 4.9 nats on the empty probe,
    its largest empty-reply probability 0.0003.)
    """
    before = summed_log_probs(scoring, parent, sequences)
    after = summed_log_probs(scoring, CANDIDATE, sequences)
    return floored_gains(before, after, floor)


def floored_gains(before: Sequence[float], after: Sequence[float], floor: float) -> list[float]:
    return [max(a, floor) - max(b, floor) for b, a in zip(before, after, strict=True)]


def judge(measurements: CandidateMeasurements, thresholds: GateThresholds) -> GateReport:
    """Every check on the measurements; the report passes only if all of them do."""
    checks = [
        heldout_feedback_check(measurements),
        margin_check(measurements, thresholds),
        win_rate_check(measurements, thresholds),
        preference_check(measurements, thresholds),
        preferred_share_check(measurements, thresholds),
        drift_check(measurements, thresholds),
        degeneracy_check(measurements, thresholds),
        degenerate_likelihood_check(measurements, thresholds),
        degenerate_feedback_check(measurements, thresholds),
        length_check(measurements, thresholds),
        generated_win_rate_check(measurements, thresholds),
        *thumbs_checks(measurements.thumbs, thresholds),
    ]
    return GateReport.from_checks(checks, gate_metrics(measurements, thresholds))


def heldout_feedback_check(m: CandidateMeasurements) -> Check:
    """Something held out to judge by: pairs or thumbs from conversations training never saw."""
    pairs = len(m.candidate_margins)
    thumbs = len(m.thumbs.labels) if m.thumbs else 0
    detail = f"{pairs} held-out pairs, {thumbs} held-out thumbs"
    if not pairs and not thumbs:
        detail += ": nothing held out to judge the candidate against"
    return Check("heldout_feedback", bool(pairs or thumbs), pairs + thumbs, 1, detail)


def margin_check(m: CandidateMeasurements, t: GateThresholds) -> Check:
    """The margin moved towards the chosen replies: movement, not yet preference."""
    if too_few := _too_few_pairs("heldout_margin", m, t, t.min_margin_gain):
        return too_few
    gain = fmean(m.candidate_margins) - fmean(m.parent_margins)
    detail = f"mean margin {fmean(m.parent_margins):.2f} -> {fmean(m.candidate_margins):.2f} nats"
    return Check("heldout_margin", gain >= t.min_margin_gain, gain, t.min_margin_gain, detail)


def win_rate_check(m: CandidateMeasurements, t: GateThresholds) -> Check:
    if too_few := _too_few_pairs("heldout_win_rate", m, t, t.min_win_rate):
        return too_few
    pairs = len(m.candidate_margins)
    wins = sum(1 for c, p in zip(m.candidate_margins, m.parent_margins, strict=True) if c > p)
    rate = wins / pairs
    detail = f"{wins} of {pairs} held-out pairs improved"
    return Check("heldout_win_rate", rate >= t.min_win_rate, rate, t.min_win_rate, detail)


def preference_check(m: CandidateMeasurements, t: GateThresholds) -> Check:
    """The candidate itself must find the chosen replies likelier, not only less unlikely."""
    if too_few := _too_few_pairs("heldout_preference", m, t, t.min_heldout_margin):
        return too_few
    mean = fmean(m.candidate_margins)
    if mean <= 0:
        reason = "still finds the rejected reply likelier"
    elif mean <= t.min_heldout_margin:
        reason = f"prefers the chosen reply, by less than {t.min_heldout_margin:g} nats"
    else:
        reason = "prefers the chosen reply"
    detail = f"mean margin {mean:.2f} nats: {reason}"
    threshold = t.min_heldout_margin
    return Check("heldout_preference", mean > threshold, mean, threshold, detail)


def preferred_share_check(m: CandidateMeasurements, t: GateThresholds) -> Check:
    """Broadly, too: a few strong preferences cannot hide that most pairs still go the other way."""
    if too_few := _too_few_pairs("heldout_preferred_share", m, t, t.min_preferred_share):
        return too_few
    pairs = len(m.candidate_margins)
    preferred = sum(1 for margin in m.candidate_margins if margin > 0)
    share = preferred / pairs
    detail = f"finds the chosen reply likelier on {preferred} of {pairs} held-out pairs"
    passed = share >= t.min_preferred_share
    return Check("heldout_preferred_share", passed, share, t.min_preferred_share, detail)


def _too_few_pairs(
    name: str, m: CandidateMeasurements, t: GateThresholds, threshold: float
) -> Check | None:
    pairs = len(m.candidate_margins)
    if pairs < max(t.min_heldout_pairs, 1):
        detail = f"not applicable: {pairs} held-out pairs"
        return Check.not_applicable(name, detail, threshold)
    return None


def drift_check(m: CandidateMeasurements, t: GateThresholds) -> Check:
    kl = m.drift.get("kl_per_token")
    if kl is None or not m.drift.get("tokens"):
        return Check("drift_kl", False, None, t.max_kl_per_token, "no parent replies to compare on")
    detail = f"KL(parent || candidate) per token on {int(m.drift['tokens'])} reply tokens"
    return Check("drift_kl", kl <= t.max_kl_per_token, kl, t.max_kl_per_token, detail)


def degeneracy_check(m: CandidateMeasurements, t: GateThresholds) -> Check:
    candidate = degenerate_share(m.candidate_replies, t)
    parent = degenerate_share(m.parent_replies, t)
    allowed = min(t.max_degenerate_share, parent + t.degenerate_tolerance)
    flagged = _flagged(m.candidate_replies, t)
    detail = f"parent {parent:.2f}, candidate {candidate:.2f}" + (
        f" ({'; '.join(flagged)})" if flagged else ""
    )
    return Check("degenerate_replies", candidate <= allowed, candidate, allowed, detail)


def degenerate_likelihood_check(m: CandidateMeasurements, t: GateThresholds) -> Check:
    """The candidate must not find empty or looping replies much likelier than the parent does."""
    means = {kind: fmean(gains) for kind, gains in m.probe_gains.items() if gains}
    if not means:
        detail = "not applicable: no probes"
        return Check.not_applicable("degenerate_likelihood", detail, t.max_degenerate_gain)
    worst = max(means, key=means.get)
    detail = ", ".join(f"{kind} {gain:+.2f} nats" for kind, gain in means.items())
    passed = means[worst] <= t.max_degenerate_gain
    return Check("degenerate_likelihood", passed, means[worst], t.max_degenerate_gain, detail)


def degenerate_feedback_check(m: CandidateMeasurements, t: GateThresholds) -> Check:
    """Feedback that prefers empty, looping or markup-leaking replies is not worth learning.

    Independent of the candidate: it judges what users chose, by the same rules as the
    candidate's own replies, so it still refuses when greedy replies have not visibly broken yet.
    """
    limit = t.max_degenerate_feedback_share
    if not m.chosen_replies:
        detail = "not applicable: no held-out chosen or up-rated replies"
        return Check.not_applicable("degenerate_feedback", detail, limit)
    share = degenerate_share(m.chosen_replies, t)
    flagged = _flagged(m.chosen_replies, t)
    detail = f"{len(flagged)} of {len(m.chosen_replies)} chosen replies are degenerate" + (
        f" ({'; '.join(flagged)})" if flagged else ""
    )
    return Check("degenerate_feedback", share <= limit, share, limit, detail)


def _flagged(replies: Sequence[Reply], t: GateThresholds) -> list[str]:
    return [
        f"#{index}: {', '.join(reasons)}"
        for index, reply in enumerate(replies)
        if (reasons := degeneracy_reasons(reply, t))
    ]


def length_check(m: CandidateMeasurements, t: GateThresholds) -> Check:
    parent = _mean_length(m.parent_replies)
    candidate = _mean_length(m.candidate_replies)
    ratio = candidate / parent if parent else (1.0 if candidate == 0 else float("inf"))
    asked = feedback_length_ratio(m)
    low, high = length_band(asked, t)
    detail = (
        f"mean reply {parent:.1f} -> {candidate:.1f} tokens; feedback asked x{asked:.2f} "
        f"(chosen {_mean_length(m.chosen_replies):.1f} vs rejected "
        f"{_mean_length(m.rejected_replies):.1f} tokens), allowed ratio {low:.2f}..{high:.2f}"
    )
    return Check("length_ratio", low <= ratio <= high, ratio, high, detail)


def feedback_length_ratio(m: CandidateMeasurements) -> float:
    """Mean chosen over mean rejected reply length, in tokens; 1.0 when it says nothing."""
    chosen, rejected = _mean_length(m.chosen_replies), _mean_length(m.rejected_replies)
    # An empty side (no pairs, or every rejected reply empty) gives no scale to go by.
    return chosen / rejected if chosen and rejected else 1.0


def length_band(asked: float, t: GateThresholds) -> tuple[float, float]:
    """The allowed candidate / parent length ratio, given the feedback's chosen / rejected ratio.

    A candidate that learnt the feedback fully changes its replies' length by about the
    ratio the feedback shows (chosen 1.2x the rejected: replies 1.2x longer), so the band
    [min, max] that tolerates drift around "no change" is carried to that ratio by
    multiplying. It is only ever widened, towards the asked-for side: a candidate that
    learnt little still sits near 1.0 and must pass too. A fixed addition (a closing line)
    is a larger ratio on short replies than on long ones, which is why the regression
    prompts include a few answers as long as chat replies; runaway growth is left to the
    length cap, which counts as degenerate.
    """
    return t.min_length_ratio * min(1.0, asked), t.max_length_ratio * max(1.0, asked)


def generated_win_rate_check(m: CandidateMeasurements, t: GateThresholds) -> Check:
    """What the candidate writes to held-out prompts beats what the parent writes.

    Judged by the run's reward model (one that passed its held-out evaluation);
    without one the replies are only shown, and the other checks decide.
    """
    name, threshold = "generated_win_rate", t.min_generated_win_rate
    if not m.answered:
        return Check.not_applicable(name, "not applicable: no held-out prompts", threshold)
    if not m.judged_by_reward_model:
        detail = (
            "not applicable: no reward model passed its held-out evaluation (too little "
            "feedback, or it ranked it poorly); held-out replies are shown side by side"
        )
        return Check.not_applicable(name, detail, threshold)
    rate = generated_win_rate(m.answered, t)
    parts = [
        f"{mode} reward {fmean(s[0] for s in scores):.2f} -> {fmean(s[1] for s in scores):.2f}"
        for mode, scores in _scores_by_mode(m.answered).items()
    ]
    detail = (
        f"candidate's replies preferred by the reward model on {rate:.0%} of "
        f"{len(m.answered)} held-out answers (ties count half; a degenerate reply loses); "
        + ", ".join(parts)
    )
    return Check(name, rate >= threshold, rate, threshold, detail)


def generated_win_rate(answered: Sequence[Answered], t: GateThresholds) -> float:
    return fmean(_outcome(item, t) for item in answered)


def _outcome(item: Answered, t: GateThresholds) -> float:
    """1 the candidate's reply wins, 0 it loses, 0.5 a tie.

    A reply that is empty, loops or leaks markup loses to one that does not,
    whatever the reward model says: a small reward model can be gamed by exactly
    those. Running into the length cap alone is not held against a held-out
    reply; users ask for long answers too.
    """
    broken = [bool(_broken(reply, t)) for reply in (item.parent, item.candidate)]
    if broken[0] != broken[1]:
        return 0.0 if broken[1] else 1.0
    if broken[0] or item.parent.text == item.candidate.text:
        return 0.5
    if item.candidate_score == item.parent_score:
        return 0.5
    return 1.0 if item.candidate_score > item.parent_score else 0.0


def _broken(reply: Reply, t: GateThresholds) -> list[str]:
    return [reason for reason in degeneracy_reasons(reply, t) if reason != "length_cap"]


def _scores_by_mode(answered: Sequence[Answered]) -> dict[str, list[tuple[float, float]]]:
    by_mode: dict[str, list[tuple[float, float]]] = {}
    for item in answered:
        if item.parent_score is not None and item.candidate_score is not None:
            by_mode.setdefault(item.mode, []).append((item.parent_score, item.candidate_score))
    return by_mode


def heldout_metrics(m: CandidateMeasurements, t: GateThresholds) -> dict[str, Any]:
    """Held-out answers side by side, with scores, and their summary figures."""
    samples = [
        {
            "prompt": item.prompt[-1]["content"],
            "mode": item.mode,
            "parent": item.parent.text,
            "candidate": item.candidate.text,
            "parent_score": item.parent_score,
            "candidate_score": item.candidate_score,
            "candidate_flags": _broken(item.candidate, t),
        }
        for item in m.answered
    ]
    figures: dict[str, Any] = {
        "heldout_prompts_answered": len({repr(item.prompt) for item in m.answered}),
        "judge": "reward_model" if m.judged_by_reward_model else None,
    }
    for mode in (GREEDY, SAMPLED):
        items = [item for item in m.answered if item.mode == mode]
        if items:
            changed = sum(item.parent.text != item.candidate.text for item in items)
            figures[f"heldout_{mode}_changed_share"] = changed / len(items)
    if m.judged_by_reward_model and m.answered:
        figures["generated_win_rate"] = generated_win_rate(m.answered, t)
        for mode, scores in _scores_by_mode(m.answered).items():
            figures[f"parent_{mode}_reward_mean"] = fmean(s[0] for s in scores)
            figures[f"candidate_{mode}_reward_mean"] = fmean(s[1] for s in scores)
    return {**figures, "heldout_samples": samples}


def gate_metrics(m: CandidateMeasurements, t: GateThresholds) -> dict[str, Any]:
    samples = [
        {
            "prompt": prompt[-1]["content"],
            "parent": parent.text,
            "candidate": candidate.text,
            "candidate_flags": degeneracy_reasons(candidate, t),
        }
        for prompt, parent, candidate in zip(
            m.prompts, m.parent_replies, m.candidate_replies, strict=True
        )
    ]
    return {
        "heldout_pairs": len(m.candidate_margins),
        "parent_margin_mean": fmean(m.parent_margins) if m.parent_margins else None,
        "candidate_margin_mean": fmean(m.candidate_margins) if m.candidate_margins else None,
        "regression_prompts": len(m.prompts),
        "parent_mean_reply_tokens": _mean_length(m.parent_replies),
        "candidate_mean_reply_tokens": _mean_length(m.candidate_replies),
        "parent_degenerate_share": degenerate_share(m.parent_replies, t),
        # Prompts where the parent's greedy reply hangs on a near-tie: noisy evidence.
        "parent_fragile_prompts": sum(reply.min_margin < 0.05 for reply in m.parent_replies),
        "candidate_degenerate_share": degenerate_share(m.candidate_replies, t),
        "chosen_mean_reply_tokens": _mean_length(m.chosen_replies),
        "rejected_mean_reply_tokens": _mean_length(m.rejected_replies),
        "feedback_length_ratio": feedback_length_ratio(m),
        "chosen_degenerate_share": degenerate_share(m.chosen_replies, t),
        **{key: float(value) for key, value in m.drift.items()},
        **{f"{kind}_probe_gain": fmean(gains) for kind, gains in m.probe_gains.items() if gains},
        "samples": samples,
        **heldout_metrics(m, t),
        **thumbs_metrics(m.thumbs),
    }


def _mean_length(replies: Sequence[Reply]) -> float:
    return fmean(reply.token_count for reply in replies) if replies else 0.0
