"""A gate that lets everything through: the tiny random model cannot learn for real,
so tests of the loop's plumbing (train, register, activate, serve) use this."""

from __future__ import annotations

PERMISSIVE_GATE = {
    "min_margin_gain": -1e9,
    "min_win_rate": 0.0,
    "min_heldout_margin": -1e9,
    "min_preferred_share": 0.0,
    "max_degenerate_feedback_share": 1.0,
    "max_kl_per_token": 1e9,
    "max_degenerate_share": 1.0,
    "max_length_ratio": 1e9,
    "max_degenerate_gain": 1e9,
    "min_generated_win_rate": 0.0,
    "max_thumbs_p_value": 1.0,
    "min_up_rated_change": -1e9,
}


def permissive_gate_env() -> dict[str, str]:
    """The same as environment variables, for processes the test starts."""
    return {f"GATE_{name.upper()}": str(value) for name, value in PERMISSIVE_GATE.items()}
