"""What a candidate must show before it may replace its parent.

The defaults are written here and nowhere else; the app sets any field from
the environment as ``GATE_`` + its name in capitals (training/knobs.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from llm.sampling import SamplingParams


@dataclass
class GateThresholds:
    # Held-out preferences: the mean of log p(chosen) - log p(rejected), summed over
    # the reply tokens, must rise over the parent's by at least this many nats...
    min_margin_gain: float = 1.0
    # ...and this share of held-out pairs must individually improve.
    min_win_rate: float = 0.6
    min_heldout_pairs: int = 1
    # Held-out thumbs (llm/evaluation/thumbs.py) judge only with at least this many of
    # each label, and their ranking must be this unlikely under meaningless labels:
    # random thumbs must not promote a version by luck. The margin and ranking
    # thresholds are min_margin_gain and min_win_rate, as for pairs.
    min_heldout_thumbs_per_label: int = 2
    max_thumbs_p_value: float = 0.05
    # The guard against "both fall": the median log-likelihood change (nats) of the
    # held-out up-rated replies must exceed this, less a quarter of the thumbs margin: a
    # margin made while the up-rated held (fell by little next to how far the
    # down-rated fell) is not "both falling" (docs/training.md, the gate on thumbs).
    min_up_rated_change: float = 0.0
    up_rated_fall_share: float = 0.25
    # Moving is not preferring: a margin can rise from -8 to -5 and still favour the
    # rejected reply. The candidate's own mean margin must exceed this (0: it finds the
    # chosen reply likelier on average)...
    min_heldout_margin: float = 0.0
    # ...and it must find the chosen reply likelier on at least this share of pairs.
    min_preferred_share: float = 0.5
    # Feedback that prefers degenerate replies (the rules below, on the held-out chosen
    # replies) is refused whatever the candidate learnt from it: at most this share.
    max_degenerate_feedback_share: float = 0.25
    # Drift: mean per-token KL(parent || candidate) on the parent's own greedy replies.
    # A learned opening costs most at the reply's first tokens: SmolLM2 candidates that
    # learnt "Happy to help!" from 30 pairs measured 0.55 (docs/training.md); the
    # degeneracy, length and preference checks catch a policy that broke.
    max_kl_per_token: float = 1.0
    # Degenerate replies (empty, loops, length cap, leaked chat markup) on the
    # regression prompts: at most this share, and no more than the parent's plus tolerance.
    max_degenerate_share: float = 0.25
    degenerate_tolerance: float = 0.0
    # Teacher-forced probes: the mean log-likelihood gain (nats, candidate - parent) of an
    # empty reply and of the parent's reply looped, per prompt, must stay below this...
    max_degenerate_gain: float = 2.0
    # ...counting only probabilities above this floor: below one reply in a thousand, a
    # probe is a reply nobody sees, however much likelier it became (docs/training.md).
    degenerate_probe_floor: float = 1e-3
    # Candidate mean reply length / parent's, in tokens; the band is stretched by the
    # length the feedback asked for (chosen / rejected replies, gate.length_band).
    min_length_ratio: float = 0.5
    max_length_ratio: float = 1.5
    # Greedy replies to the regression prompts stop here (and count as hitting the cap):
    # room for the longest default prompt's paragraph (~60 tokens) plus a closing line.
    max_new_tokens: int = 96
    # Both models answer up to this many held-out prompts (from held-out conversations)
    # greedily and sampled with the serving defaults; the same seed for both.
    max_heldout_prompts: int = 12
    heldout_temperature: float = SamplingParams.temperature
    heldout_top_p: float = SamplingParams.top_p
    heldout_seed: int = 0
    # The reward model (when one passed) must prefer the candidate's held-out replies on
    # at least this share of them, ties counting half: an unchanged candidate scores 0.5.
    min_generated_win_rate: float = 0.55
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
    # On thumbs, its ranking must also be this unlikely under meaningless labels.
    max_p_value: float = 0.05
