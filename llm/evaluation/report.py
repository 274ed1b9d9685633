"""Gate results as plain, JSON-serialisable dataclasses."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Check:
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    detail: str = ""


@dataclass
class GateReport:
    passed: bool
    checks: list[Check]
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_checks(cls, checks: list[Check], metrics: dict[str, Any]) -> GateReport:
        return cls(
            passed=bool(checks) and all(check.passed for check in checks),
            checks=checks,
            metrics=metrics,
        )

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.name == name)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)


@dataclass
class RewardModelReport:
    passed: bool
    accuracy: float | None
    mean_margin: float | None
    pairs: int
    min_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))


def _finite(value: Any) -> Any:
    """Replace NaN/inf (not valid JSON) with None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
