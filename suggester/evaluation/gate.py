"""The CI gate: compare an evaluation's figures with eval/thresholds.toml."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from suggester.errors import InputError

THRESHOLDS_PATH = Path("eval/thresholds.toml")
# A dense model whose figures differ from e5-small's keeps its own floors next to it:
# eval/thresholds-<model>.toml (e.g. thresholds-embeddinggemma.toml for `make eval-gemma`).
MODEL_THRESHOLDS = "thresholds-{model}.toml"
_BOUNDS = {"min": "≥", "max": "≤"}


@dataclass(frozen=True, kw_only=True)
class Threshold:
    metric: str
    bound: str  # "min" or "max"
    value: float

    @property
    def required(self) -> str:
        return f"{_BOUNDS[self.bound]} {self.value:g}"

    def holds(self, actual: float) -> bool:
        return actual >= self.value if self.bound == "min" else actual <= self.value


@dataclass(frozen=True, kw_only=True)
class GateFailure:
    threshold: Threshold
    actual: float | None

    def __str__(self) -> str:
        shown = "not measured" if self.actual is None else f"{self.actual:.4g}"
        return f"{self.threshold.metric} = {shown}, required {self.threshold.required}"


def thresholds_path(model: str, default: Path = THRESHOLDS_PATH) -> Path:
    """The thresholds file that gates `model` (as SUGGESTER_EMBED_MODEL names it): its own when
    there is one, else the default file (e5-small's floors)."""
    if re.fullmatch(r"[a-z0-9][a-z0-9.-]*", model):
        own = default.with_name(MODEL_THRESHOLDS.format(model=model))
        if own.is_file():
            return own
    return default


def load_thresholds(path: Path = THRESHOLDS_PATH) -> list[Threshold]:
    """Read the thresholds file: `[min]` and `[max]` tables of metric = number."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"no thresholds file at {path}: run from the repository root "
                         "or pass the file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(data) - set(_BOUNDS) - {"target"}
    if unknown:
        raise InputError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; "
                         "use [min], [max] and [target]")
    return _read_table(path, data, _BOUNDS)


def load_targets(path: Path = THRESHOLDS_PATH) -> list[Threshold]:
    """The `[target]` table: where each figure must get to (reported, not enforced yet)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Threshold(metric=t.metric, bound="min", value=t.value)
            for t in _read_table(path, {"min": data.get("target", {})}, {"min": "≥"})]


def _read_table(path: Path, data: Mapping[str, Mapping[str, object]],
                bounds: Mapping[str, str]) -> list[Threshold]:
    thresholds = []
    for bound in bounds:
        for metric, value in data.get(bound, {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{path}: [{bound}] {metric} must be a number, got {value!r}")
            thresholds.append(Threshold(metric=metric, bound=bound, value=float(value)))
    return thresholds


def check_gate(figures: Mapping[str, float | None],
               thresholds: list[Threshold]) -> list[GateFailure]:
    """Every threshold that does not hold; a figure that was not measured fails too."""
    failures = []
    for threshold in thresholds:
        actual = figures.get(threshold.metric)
        if actual is None or (isinstance(actual, float) and math.isnan(actual)) \
                or not threshold.holds(actual):
            failures.append(GateFailure(threshold=threshold, actual=actual))
    return failures
