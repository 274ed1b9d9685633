"""The evaluation gate: does a trained version deserve promotion?

Plain Python (no web stack)::

    report = evaluate_candidate(base_model=path, parent=versions / "v6",
                                candidate=versions / "v7", heldout_pairs=heldout)
    report.passed, report.to_dict()   # JSON for the training run's record
"""

from llm.evaluation.degeneracy import degeneracy_reasons, repetition_share
from llm.evaluation.gate import (
    Answered,
    CandidateMeasurements,
    evaluate_candidate,
    judge,
    measure_candidate,
)
from llm.evaluation.generation import Reply
from llm.evaluation.prompts import DEFAULT_REGRESSION_PROMPTS
from llm.evaluation.report import Check, GateReport, RewardModelReport
from llm.evaluation.reward import evaluate_reward_model, evaluate_thumbs_reward_model
from llm.evaluation.thresholds import GateThresholds, RewardModelThresholds

__all__ = [
    "Answered",
    "DEFAULT_REGRESSION_PROMPTS",
    "CandidateMeasurements",
    "Check",
    "GateReport",
    "GateThresholds",
    "Reply",
    "RewardModelReport",
    "RewardModelThresholds",
    "degeneracy_reasons",
    "evaluate_candidate",
    "evaluate_reward_model",
    "evaluate_thumbs_reward_model",
    "judge",
    "measure_candidate",
    "repetition_share",
]
