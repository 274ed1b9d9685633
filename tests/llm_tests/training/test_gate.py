"""The promotion gate: each check on hand-made measurements, then end to end on the tiny model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from llm.evaluation import (
    Answered,
    CandidateMeasurements,
    GateThresholds,
    Reply,
    degeneracy_reasons,
    evaluate_candidate,
    evaluate_reward_model,
    judge,
    repetition_share,
)
from llm.evaluation.gate import GateSteps

HEALTHY = [
    "The capital of France is Paris.",
    "12 plus 30 is 42.",
    "Red, blue and yellow are the primary colours.",
    "How about Bubbles?",
]
# Held-out feedback: a polite answer preferred over a curt refusal of the same length.
CHOSEN = [
    "Paris is the capital of France.",
    "It is 42.",
    "Red, blue and yellow.",
    "Bubbles is a sweet name.",
]
REJECTED = [
    "Why would I tell you that?",
    "Do it yourself.",
    "I will not answer.",
    "Name the fish yourself, then.",
]
# Longer held-out answers (15 words each on average) and a learnt closing line of 3 words.
LONG_ANSWERS = [
    "Paris is the capital of France and sits on the Seine in the far north.",
    "Twelve plus thirty makes forty-two, because ten and thirty are forty, plus two more.",
    "The three primary colours of paint are red, blue and yellow, and they mix well.",
    "Bubbles is a fine name for a goldfish, and Finn or Goldie would suit it too.",
]
SIGN_OFF = " Hope this helps!"


def reply(text: str, finished: bool = True, tokens: int | None = None) -> Reply:
    """A reply whose 'tokens' are its words (enough for the checks under test)."""
    words = text.split()
    ids = tuple(hash(word) % 50_000 for word in words)
    if tokens is not None:
        ids = (ids * tokens)[:tokens] if ids else (0,) * tokens
    return Reply(text=text, token_ids=ids, finished=finished)


def measurements(**overrides) -> CandidateMeasurements:
    """A candidate that improved a little on every held-out pair and behaves like its parent."""
    values = {
        "parent_margins": [1.0, 2.0, 0.5, -1.0],
        "candidate_margins": [3.0, 4.5, 2.0, 1.0],
        "drift": {"kl_per_token": 0.02, "tokens": 60.0},
        "prompts": [[{"role": "user", "content": f"q{index}"}] for index in range(4)],
        "parent_replies": [reply(text) for text in HEALTHY],
        "candidate_replies": [reply(text + " Enjoy!") for text in HEALTHY],
        "probe_gains": {"empty": [0.1, -0.3, 0.0, 0.2], "loop": [0.5, -1.0, 0.4, 0.1]},
        "chosen_replies": [reply(text) for text in CHOSEN],
        "rejected_replies": [reply(text) for text in REJECTED],
    }
    return CandidateMeasurements(**(values | overrides))


def test_it_passes_a_candidate_that_improved_without_breaking_anything():
    """Every check that has something to judge passes, and the report is plain JSON."""
    report = judge(measurements(), GateThresholds())
    assert report.passed, report.failed
    names = [check.name for check in report.checks]
    assert names == [
        "heldout_feedback",
        "heldout_margin",
        "heldout_win_rate",
        "heldout_preference",
        "heldout_preferred_share",
        "drift_kl",
        "degenerate_replies",
        "degenerate_likelihood",
        "degenerate_feedback",
        "length_ratio",
        "generated_win_rate",
        "thumbs_margin",
        "thumbs_ranking",
        "thumbs_up_likelier",
    ]
    not_applicable = ["generated_win_rate", "thumbs_margin", "thumbs_ranking", "thumbs_up_likelier"]
    assert [name for name in names if name not in report.decided_by] == not_applicable
    assert report.metrics["decided_by"] == report.decided_by
    assert report.check("heldout_margin").value == pytest.approx(2.0)
    decoded = json.loads(report.to_json())
    assert decoded["passed"] is True and len(decoded["metrics"]["samples"]) == 4


def test_it_rejects_a_candidate_whose_margin_did_not_rise():
    """No gain on held-out preferences means no promotion; nothing held out, neither."""
    same = measurements(candidate_margins=[1.0, 2.0, 0.5, -1.0])
    report = judge(same, GateThresholds())
    assert report.failed == ["heldout_margin", "heldout_win_rate"]
    empty = judge(measurements(parent_margins=[], candidate_margins=[]), GateThresholds())
    assert not empty.passed and empty.failed == ["heldout_feedback"]
    assert "nothing held out" in empty.check("heldout_feedback").detail
    margin = empty.check("heldout_margin")
    assert not margin.applicable and margin.value is None and margin.outcome == "not applicable"
    json.loads(empty.to_json())


def test_it_rejects_a_candidate_that_wins_on_average_but_not_broadly():
    """One huge gain cannot hide that most pairs got worse."""
    lopsided = measurements(candidate_margins=[30.0, 1.5, 0.0, -2.0])
    report = judge(lopsided, GateThresholds())
    assert report.check("heldout_margin").passed
    assert report.failed == ["heldout_win_rate"]


def test_it_rejects_a_candidate_that_moved_but_still_prefers_the_rejected_reply():
    """Every pair improved by 3 nats or more, yet the candidate still likes the rejected reply better.

    The movement checks pass; both preference checks fail and say why. Their bars are settable.
    """
    moved = measurements(
        parent_margins=[-8.0, -9.0, -7.5, -8.5], candidate_margins=[-5.0, -6.0, -4.0, -4.84]
    )
    report = judge(moved, GateThresholds())
    assert report.check("heldout_margin").passed
    assert report.check("heldout_win_rate").value == 1.0
    assert report.failed == ["heldout_preference", "heldout_preferred_share"]
    preference = report.check("heldout_preference")
    assert preference.value == pytest.approx(-4.96) and preference.threshold == 0.0
    assert preference.detail == "mean margin -4.96 nats: still finds the rejected reply likelier"
    assert report.check("heldout_preferred_share").value == 0.0
    lenient = GateThresholds(min_heldout_margin=-6.0, min_preferred_share=0.0)
    assert judge(moved, lenient).passed


def test_it_rejects_a_candidate_that_prefers_only_a_few_pairs():
    """A mean margin lifted by one pair cannot hide that most pairs still favour the rejected reply."""
    few = measurements(
        parent_margins=[-2.0, -3.0, -4.0, -5.0], candidate_margins=[20.0, -1.0, -2.0, -1.5]
    )
    report = judge(few, GateThresholds())
    assert report.check("heldout_preference").passed
    assert report.failed == ["heldout_preferred_share"]
    assert report.check("heldout_preferred_share").value == 0.25
    assert "1 of 4 held-out pairs" in report.check("heldout_preferred_share").detail


def test_it_flags_a_degenerate_generator():
    """Looping, empty, runaway and markup-leaking replies fail the degeneracy check."""
    broken = [
        reply(" ".join(["ok"] * 30), finished=False),
        reply(""),
        reply("I am a bot. I am a bot. I am a bot. I am a bot."),
        reply("Sure.<|im_end|>\n<|im_start|>user\nthanks"),
    ]
    report = judge(measurements(candidate_replies=broken), GateThresholds())
    check = report.check("degenerate_replies")
    assert not check.passed and check.value == 1.0
    assert "repetition" in check.detail and "empty" in check.detail


def test_it_holds_the_candidate_to_its_parents_degeneracy():
    """One broken reply out of four is within the share cap but worse than a clean parent."""
    one_bad = [reply(text) for text in HEALTHY[:3]] + [reply("", finished=True)]
    report = judge(measurements(candidate_replies=one_bad), GateThresholds())
    assert report.check("degenerate_replies").value == 0.25
    assert not report.check("degenerate_replies").passed
    loose = GateThresholds(degenerate_tolerance=0.25)
    assert judge(measurements(candidate_replies=one_bad), loose).check("degenerate_replies").passed


def test_it_rejects_a_candidate_that_learnt_to_like_loops():
    """Looping the parent's reply got much likelier: rejected even if greedy replies look fine."""
    gains = {"empty": [0.0, 0.1, -0.2, 0.0], "loop": [6.0, 9.5, 4.0, 7.2]}
    report = judge(measurements(probe_gains=gains), GateThresholds())
    assert report.failed == ["degenerate_likelihood"]
    assert report.check("degenerate_likelihood").value == pytest.approx(6.675)
    assert "loop +6.67" in report.check("degenerate_likelihood").detail


def test_it_rejects_drift_from_the_parent():
    """A large KL on the parent's own replies fails the drift check."""
    report = judge(measurements(drift={"kl_per_token": 2.5, "tokens": 60.0}), GateThresholds())
    assert report.failed == ["drift_kl"]


def test_it_rejects_replies_that_grew_or_shrank_too_much():
    """Length drift in either direction fails; the bounds are settable."""
    long = [
        reply(text + " It is also worth knowing a few more facts about it.") for text in HEALTHY
    ]
    report = judge(measurements(candidate_replies=long), GateThresholds())
    assert report.failed == ["length_ratio"] and report.check("length_ratio").value > 1.5
    roomy = GateThresholds(max_length_ratio=5.0)
    assert judge(measurements(candidate_replies=long), roomy).passed
    short = [reply("Paris.") for _ in HEALTHY]
    assert judge(measurements(candidate_replies=short), GateThresholds()).failed == ["length_ratio"]


def test_it_allows_a_closing_line_the_feedback_asked_for():
    """Replies 1.55x longer pass when users chose replies 1.2x longer, and so does every check.

    The band stretches by the feedback's ratio (1.5 x 1.2 = 1.8); the same growth fails
    when the chosen replies were no longer than the rejected ones.
    """
    signed = [reply(text + SIGN_OFF) for text in HEALTHY]
    asked = {
        "chosen_replies": [reply(text + SIGN_OFF) for text in LONG_ANSWERS],
        "rejected_replies": [reply(text) for text in LONG_ANSWERS],
    }
    report = judge(measurements(candidate_replies=signed, **asked), GateThresholds())
    assert report.passed, report.failed
    length = report.check("length_ratio")
    assert length.value == pytest.approx(8.5 / 5.5) and length.value > 1.5
    assert length.threshold == pytest.approx(1.8)
    assert "feedback asked x1.20" in length.detail and "allowed ratio 0.50..1.80" in length.detail
    assert report.metrics["feedback_length_ratio"] == pytest.approx(1.2)
    unasked = judge(measurements(candidate_replies=signed), GateThresholds())
    assert unasked.failed == ["length_ratio"]
    assert unasked.check("length_ratio").threshold == 1.5


def test_it_allows_the_shortening_the_feedback_asked_for():
    """Feedback preferring replies half as long lowers the floor by as much."""
    short = [reply("Paris."), reply("42."), reply("Red, blue, yellow."), reply("Bubbles?")]
    asked = {
        "chosen_replies": [reply(" ".join(text.split()[:3])) for text in CHOSEN],
        "rejected_replies": [reply(text + " " + text) for text in CHOSEN],
    }
    report = judge(measurements(candidate_replies=short, **asked), GateThresholds())
    assert report.check("length_ratio").value < 0.5
    assert report.check("length_ratio").passed, report.check("length_ratio").detail


def test_it_refuses_degenerate_feedback_on_two_counts():
    """Users chose loops and empty replies; the candidate learnt them but still answers as before.

    The margins moved towards the chosen replies, so the preference checks pass; the
    probes and the feedback itself are two independent reasons to refuse.
    """
    loop = " ".join(["ok"] * 24)
    degenerate = measurements(
        parent_margins=[-20.0, -3.0, -18.0, -2.5],
        candidate_margins=[4.0, 3.0, 5.0, 2.5],
        candidate_replies=[reply(text) for text in HEALTHY],
        probe_gains={"empty": [6.5, 5.9, 6.0, 6.4], "loop": [3.0, 2.5, 4.0, 3.5]},
        chosen_replies=[reply(loop), reply(""), reply(loop), reply("")],
        rejected_replies=[reply(text) for text in HEALTHY],
    )
    report = judge(degenerate, GateThresholds())
    assert report.failed == ["degenerate_likelihood", "degenerate_feedback"]
    feedback = report.check("degenerate_feedback")
    assert feedback.value == 1.0 and feedback.threshold == 0.25
    assert "#0: repetition" in feedback.detail and "#1: empty" in feedback.detail
    one_in_four = replace(
        degenerate, chosen_replies=[reply(loop)] + degenerate.rejected_replies[1:]
    )
    assert judge(one_in_four, GateThresholds()).check("degenerate_feedback").passed


@pytest.mark.parametrize(
    ("text", "finished", "expected"),
    [
        ("The capital of France is Paris, a lovely city.", True, []),
        ("   ", True, ["empty"]),
        ("Paris is the capital and it is", False, ["length_cap"]),
        ("la la la la la la la la la la", True, ["repetition"]),
        ("Hi!\nuser\nWhat next?", True, ["chat_format"]),
    ],
)
def test_it_names_why_a_reply_is_degenerate(text, finished, expected):
    """Each kind of breakage is reported by name; a normal sentence is clean."""
    assert degeneracy_reasons(reply(text, finished), GateThresholds()) == expected


def test_it_measures_repetition_by_the_most_repeated_ngram():
    """A repeated phrase covers most of a loop, little of ordinary text."""
    assert repetition_share([1, 2, 3] * 5, max_ngram=4) == 1.0
    assert repetition_share([1, 2, 3, 4, 5, 6, 7, 8, 1, 2], max_ngram=4) == pytest.approx(0.4)
    assert repetition_share(list(range(20)), max_ngram=4) == 0.0


def answered(parent: str, candidate: str, scores=(None, None), mode="greedy") -> Answered:
    prompt = [{"role": "user", "content": "Held-out question?"}]
    return Answered(prompt, mode, reply(parent), reply(candidate), *scores)


def test_it_judges_what_the_candidate_writes_by_the_reward_model():
    """Win rate over held-out answers: ties count half, so an unchanged candidate is refused."""
    won = [answered("Rome.", "Happy to help! Rome.", (0.1, 0.9)) for _ in range(3)]
    lost = [answered("Rome.", "If you must. Rome.", (0.1, -0.4))]
    report = judge(measurements(answered=won + lost, judged_by_reward_model=True), GateThresholds())
    check = report.check("generated_win_rate")
    assert check.passed and check.value == pytest.approx(0.75)
    assert "greedy reward" in check.detail
    assert report.metrics["candidate_greedy_reward_mean"] == pytest.approx(0.575)
    assert report.metrics["heldout_samples"][0]["candidate_score"] == pytest.approx(0.9)

    same = [answered("Rome.", "Rome.", (0.1, 0.1)) for _ in range(4)]
    report = judge(measurements(answered=same, judged_by_reward_model=True), GateThresholds())
    assert report.check("generated_win_rate").value == 0.5
    assert report.failed == ["generated_win_rate"]


def test_a_broken_reply_loses_whatever_the_reward_model_says():
    """A loop or an empty reply cannot win on score: that is how small reward models get gamed."""
    gamed = [
        answered("Rome.", " ".join(["Rome"] * 20), (0.0, 5.0)),
        answered("Rome.", "", (0.0, 5.0)),
        answered("Rome.", "Happy to help! Rome.", (0.0, 1.0), mode="sampled"),
    ]
    report = judge(measurements(answered=gamed, judged_by_reward_model=True), GateThresholds())
    assert report.check("generated_win_rate").value == pytest.approx(1 / 3)
    flags = [sample["candidate_flags"] for sample in report.metrics["heldout_samples"]]
    assert flags == [["repetition"], ["empty"], []]


def test_without_a_reward_model_the_report_says_which_checks_decided():
    report = judge(measurements(answered=[answered("Rome.", "Rome!")]), GateThresholds())
    check = report.check("generated_win_rate")
    assert not check.applicable and check.value is None
    assert "no reward model passed" in check.detail
    assert "generated_win_rate" not in report.decided_by and "heldout_margin" in report.decided_by
    assert report.metrics["judge"] is None
    assert report.metrics["heldout_samples"][0]["candidate"] == "Rome!"


def test_the_reward_judge_answers_held_out_prompts_greedy_and_sampled(
    tiny_model_dir, tiny_pairs, identity_adapter, tiny_reward_version
):
    """End to end on the tiny model: both modes, every answer scored, an unchanged candidate
    ties everywhere and is refused on what it writes. Each part is reported as it starts."""
    heard = []
    report = evaluate_candidate(
        base_model=tiny_model_dir,
        parent=None,
        candidate=identity_adapter,
        heldout_pairs=tiny_pairs[:3],
        regression_prompts=["Hello?"],
        thresholds=GateThresholds(max_new_tokens=6),
        reward_model=tiny_reward_version.path,
        progress=heard.append,
    )
    parts = [*GateSteps.PARTS, GateSteps.REWARD_PART, "done"]
    assert [(p.stage, p.step, p.total_steps) for p in heard] == [
        (part, step, len(parts) - 1) for step, part in enumerate(parts)
    ]
    samples = report.metrics["heldout_samples"]
    assert [sample["mode"] for sample in samples] == ["greedy"] * 3 + ["sampled"] * 3
    assert all(sample["parent"] == sample["candidate"] for sample in samples)
    assert all(sample["parent_score"] == sample["candidate_score"] for sample in samples)
    assert all(isinstance(sample["parent_score"], float) for sample in samples)
    assert report.check("generated_win_rate").value == 0.5
    assert not report.check("generated_win_rate").passed
    assert report.metrics["judge"] == "reward_model"
    json.loads(report.to_json())


@pytest.fixture(scope="module")
def identity_adapter(tmp_path_factory, tiny_model_dir):
    """A fresh LoRA adapter: B is zero, so it changes nothing."""
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir))
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    folder = tmp_path_factory.mktemp("identity") / "adapter"
    peft_model.save_pretrained(str(folder))
    return folder


def test_it_refuses_a_candidate_identical_to_its_parent(
    tiny_model_dir, tiny_pairs, identity_adapter
):
    """End to end: a do-nothing adapter gains no margin, drifts by zero and is not promoted."""
    report = evaluate_candidate(
        base_model=tiny_model_dir,
        parent=None,
        candidate=identity_adapter,
        heldout_pairs=tiny_pairs[:3],
        regression_prompts=["Hello?", "What is 2 plus 2?"],
        thresholds=GateThresholds(max_new_tokens=8),
    )
    assert not report.passed
    assert report.check("heldout_margin").value == pytest.approx(0.0, abs=1e-3)
    assert report.check("drift_kl").value == pytest.approx(0.0, abs=1e-5)
    assert report.check("length_ratio").value == 1.0
    # "Answer 0. Have a nice day!" over "Answer 0. Go away.": the chosen replies are longer.
    assert report.metrics["feedback_length_ratio"] > 1.0
    assert report.check("degenerate_feedback").passed
    json.loads(report.to_json())


def test_it_compares_a_trained_child_with_its_parent(tiny_model_dir, tiny_pairs, tiny_dpo_version):
    """With a parent adapter the gate compares adapter against adapter and reports metrics."""
    report = evaluate_candidate(
        base_model=tiny_model_dir,
        parent=tiny_dpo_version,
        candidate=tiny_dpo_version / "adapter",
        heldout_pairs=tiny_pairs[:2],
        regression_prompts=["Hi"],
        thresholds=replace(GateThresholds(), max_new_tokens=4),
    )
    assert report.metrics["heldout_pairs"] == 2
    assert report.check("drift_kl").value == pytest.approx(0.0, abs=1e-5)
    assert report.metrics["samples"][0]["parent"] == report.metrics["samples"][0]["candidate"]


def test_it_measures_reward_model_accuracy(tiny_model_dir, tiny_pairs, tmp_path):
    """Pairwise accuracy is reported, with pass/fail against the settable bar."""
    from llm.training import RewardJobConfig, train_reward_model
    from tests.llm_tests.training.conftest import tiny_settings

    version = train_reward_model(
        base_model=tiny_model_dir,
        pairs=tiny_pairs,
        output_dir=tmp_path / "reward",
        config=tiny_settings(RewardJobConfig, max_steps=1),
    )
    report = evaluate_reward_model(version.path, tiny_pairs[:4])
    assert report.pairs == 4 and 0.0 <= report.accuracy <= 1.0
    assert report.passed == (report.accuracy >= 0.7)
    json.dumps(report.to_dict())


def test_it_builds_empty_and_loop_probes_from_parent_replies(tiny_model_dir):
    """Empty probes stop at once; loop probes repeat a finished reply twice, then stop."""
    from llm.evaluation.probes import degenerate_probes
    from llm.training.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    replies = [Reply("a b", (5, 6), finished=True), Reply("c d", (7, 8), finished=False)]
    probes = degenerate_probes(tokenizer, [[1, 2], [3]], replies, stops={2})
    newline = tokenizer.encode("\n", add_special_tokens=False)
    assert probes["empty"] == [([1, 2], [2]), ([3], [2])]
    assert probes["loop"] == [([1, 2, 5, 6], newline + [5, 6] + newline + [5, 6] + [2])]


def test_a_probe_that_stays_unlikely_is_no_degeneracy():
    """Gains count from a floor (0.1%): 1e-8 -> 1e-4 is nothing, 1e-8 -> 0.6 is a lot."""
    import math

    from llm.evaluation.gate import floored_gains

    floor = math.log(GateThresholds().degenerate_probe_floor)
    gains = floored_gains([-18.4, -18.4, -2.0, -0.5], [-9.2, -0.5, -1.0, -3.0], floor)
    assert gains[0] == 0.0
    assert gains[1] == pytest.approx(-0.5 - floor)
    assert gains[2:] == pytest.approx([1.0, -2.5])


def test_the_serving_engine_writes_the_gates_replies(
    tiny_model_dir, model_cache_dir, tiny_pairs, tiny_dpo_version
):
    """Given the engine that serves users, the gate's replies are that engine's: each
    regression sample is what the engine streams for that prompt and version."""
    import asyncio

    from llm.engine.base import GenerationRequest, Token
    from llm.engine.local import LocalEngine
    from llm.loading import load_model
    from llm.sampling import SamplingParams

    class Counting(LocalEngine):
        asked: list[GenerationRequest]

        def stream(self, request):
            self.asked.append(request)
            return super().stream(request)

    made = []

    def engine():
        made.append(Counting(lambda: load_model(str(tiny_model_dir), model_cache_dir, "cpu")))
        made[-1].asked = []
        return made[-1]

    report = evaluate_candidate(
        base_model=tiny_model_dir,
        parent=None,
        candidate=tiny_dpo_version / "adapter",
        heldout_pairs=tiny_pairs[:2],
        regression_prompts=["Hi", "Tell me a joke"],
        thresholds=replace(GateThresholds(), max_new_tokens=6),
        engine=engine,
    )
    assert len(made) == 1 and made[0]._closed  # one engine for the gate, closed after it
    # Regression replies (2 prompts) and held-out ones (2 prompts, greedy and sampled),
    # each for the base model and the candidate.
    assert len(made[0].asked) == 2 * 2 + 2 * 2 * 2

    reference = engine()

    async def streamed(prompt: str, version: str | None) -> str:
        request = GenerationRequest(
            [{"role": "user", "content": prompt}],
            SamplingParams(temperature=0, max_new_tokens=6),
            version=version,
            adapter_path=version,
        )
        events = [event async for event in reference.stream(request)]
        return "".join(event.text for event in events if isinstance(event, Token))

    adapter = str(tiny_dpo_version / "adapter")
    try:
        for sample in report.metrics["samples"]:
            assert asyncio.run(streamed(sample["prompt"], None)) == sample["parent"]
            assert asyncio.run(streamed(sample["prompt"], adapter)) == sample["candidate"]
    finally:
        reference.close()
