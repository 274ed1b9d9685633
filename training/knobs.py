"""The gate's thresholds and the training jobs' configs, built from settings.

Each knob's default lives once, in its dataclass (llm/evaluation/thresholds.py,
llm/training/config.py). config/settings.py collects the environment's
overrides by prefix (``GATE_MAX_LENGTH_RATIO=1.8`` → ``GATE_KNOBS``); each
function here lays one prefix's overrides over one dataclass.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from llm.evaluation.thresholds import GateThresholds, RewardModelThresholds
from llm.training.config import JobConfig, OnlineRLJobConfig

Knobs = TypeVar("Knobs")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def gate_thresholds() -> GateThresholds:
    _check_known(settings.GATE_KNOBS, "GATE_", GateThresholds, RewardModelThresholds)
    return _build(GateThresholds, settings.GATE_KNOBS)


def reward_model_thresholds() -> RewardModelThresholds:
    return _build(RewardModelThresholds, settings.GATE_KNOBS)


def job_config(config_class: type[JobConfig]) -> JobConfig:
    """A DPO, KTO or reward job's config; online RL has knobs of its own."""
    if issubclass(config_class, OnlineRLJobConfig):
        return _build(config_class, settings.TRAINING_RL_KNOBS)
    return _build(config_class, settings.TRAINING_KNOBS)


def _build(knobs_class: type[Knobs], overrides: dict[str, Any]) -> Knobs:
    """``knobs_class`` with those ``overrides`` that name its scalar fields, typed."""
    hints = typing.get_type_hints(knobs_class)
    values = {
        field.name: _typed(overrides[field.name], hints[field.name], field.name)
        for field in dataclasses.fields(knobs_class)
        if field.name in overrides and _scalar(hints[field.name]) is not None
    }
    return knobs_class(**values)


def _check_known(overrides: dict[str, Any], prefix: str, *knobs_classes: type) -> None:
    """A prefix that belongs to these dataclasses alone refuses a name none of them has."""
    known = {field.name for cls in knobs_classes for field in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        names = ", ".join(prefix + name.upper() for name in unknown)
        fields = ", ".join(sorted(known))
        raise ImproperlyConfigured(f"Unknown setting(s) {names}; the knobs are: {fields}")


def _scalar(hint: Any) -> type | None:
    """The one scalar type a field holds (``float | None`` → float), else None."""
    if typing.get_origin(hint) is typing.Literal:
        return str
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        scalars = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _scalar(scalars[0]) if len(scalars) == 1 else None
    return hint if hint in (bool, int, float, str) else None


def _typed(value: Any, hint: Any, name: str) -> Any:
    """A setting's value (text from the environment, or typed) as the field's type."""
    if not isinstance(value, str):
        return value
    scalar, text = _scalar(hint), value.strip()
    if text.lower() in ("", "none") and type(None) in typing.get_args(hint):
        return None
    try:
        if scalar is bool:
            if text.lower() not in _TRUE | _FALSE:
                raise ValueError(text)
            return text.lower() in _TRUE
        return scalar(text)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: {value!r} is not a {scalar.__name__}") from None
