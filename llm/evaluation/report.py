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
    # False: nothing to judge (no held-out pairs, no reward model). Such a check
    # neither passes nor fails; the report's verdict is made by the others.
    applicable: bool = True

    @classmethod
    def not_applicable(cls, name: str, detail: str, threshold: float | None = None) -> Check:
        return cls(name, False, None, threshold, detail, applicable=False)

    @property
    def outcome(self) -> str:
        """Passed, failed or not applicable, as reports show it."""
        if not self.applicable:
            return "not applicable"
        return "passed" if self.passed else "failed"


@dataclass
class GateReport:
    passed: bool
    checks: list[Check]
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_checks(cls, checks: list[Check], metrics: dict[str, Any]) -> GateReport:
        decided = [check for check in checks if check.applicable]
        return cls(
            passed=bool(decided) and all(check.passed for check in decided),
            checks=checks,
            metrics={**metrics, "decided_by": [check.name for check in decided]},
        )

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.name == name)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if check.applicable and not check.passed]

    @property
    def decided_by(self) -> list[str]:
        """The checks that had something to judge: the ones the verdict rests on."""
        return [check.name for check in self.checks if check.applicable]

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
