"""What a candidate must show before it may replace its parent.

The defaults are written here and nowhere else; the app sets any field from
the environment as ``GATE_`` + its name in capitals (training/knobs.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GateThresholds:
    # Held-out preferences: the mean of log p(chosen) - log p(rejected), summed over
    # the reply tokens, must rise over the parent's by at least this many nats...
    min_margin_gain: float = 1.0
    # ...and this share of held-out pairs must individually improve.
    min_win_rate: float = 0.6
    min_heldout_pairs: int = 1
    # Drift: mean per-token KL(parent || candidate) on the parent's own greedy replies.
    max_kl_per_token: float = 0.5
    # Degenerate replies (empty, loops, length cap, leaked chat markup) on the
    # regression prompts: at most this share, and no more than the parent's plus tolerance.
    max_degenerate_share: float = 0.25
    degenerate_tolerance: float = 0.0
    # Teacher-forced probes: the mean log-likelihood gain (nats, candidate - parent) of an
    # empty reply and of the parent's reply looped, per prompt, must stay below this.
    max_degenerate_gain: float = 2.0
    # Candidate mean reply length / parent's, in tokens.
    min_length_ratio: float = 0.5
    max_length_ratio: float = 1.5
    # Greedy replies to the regression prompts stop here (and count as hitting the cap).
    max_new_tokens: int = 64
    # A reply loops when one n-gram (n <= repetition_max_ngram) covers this share of it.
    repetition_share: float = 0.5
    repetition_max_ngram: int = 4
    repetition_min_tokens: int = 8


@dataclass
class RewardModelThresholds:
    # A reward model must rank this share of held-out pairs right, on at least
    # this many pairs, before online RL may use it.
    min_reward_accuracy: float = 0.7
    min_reward_pairs: int = 4
