"""The bundled model's measured learning curve (``learning_curve.json`` in the bundle):
held-out word error rates after N enrollment takes, written by `dictation learning-curve`
from `dictation evaluate --heldout --takes ... --json` rows.

Read here, in the dictating layer (plain json, no torch), so the app can show how much the
model was measured to gain from a voice's takes, with what was measured and how.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dictation.app.base_model import bundled_model_dir
from dictation.app.runtime import ModelMissingError

CURVE_FILE = "learning_curve.json"
NOT_MEASURED = "No learning curve was measured for this speech model."


class CurveError(ValueError):
    """The learning curve file is there but cannot be used (unreadable or malformed)."""


@dataclass(frozen=True)
class CurvePoint:
    """Mean held-out WERs (fractions) over the speakers measured at `takes` takes."""

    takes: int
    base_wer: float
    maml_wer: float
    finetune_wer: float | None
    speakers: int


@dataclass(frozen=True)
class LearningCurve:
    measured_with: str
    model_version: str
    speakers: int
    by_source: dict[str, int]  # corpus source -> speakers from it
    points: tuple[CurvePoint, ...]

    @property
    def has_finetune(self) -> bool:
        return any(p.finetune_wer is not None for p in self.points)


def curve_path(bundle_dir: Path | None = None) -> Path:
    """Where the curve of `bundle_dir` (default: the bundled model) lives."""
    return (bundle_dir if bundle_dir is not None else bundled_model_dir()) / CURVE_FILE


def load_learning_curve(bundle_dir: Path | None = None) -> LearningCurve | None:
    """The curve of `bundle_dir` (default: the bundled model); None when it has none (or
    the model itself is missing). A file that is there but unusable raises CurveError."""
    try:
        path = curve_path(bundle_dir)
    except ModelMissingError:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CurveError(f"{path} cannot be read: {exc}") from exc
    try:
        return parse_curve(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise CurveError(f"{path} is damaged: {exc}") from exc


def parse_curve(data: Any) -> LearningCurve:
    """The curve in a decoded ``learning_curve.json``; ValueError/KeyError/TypeError
    when a field is missing or out of range."""
    if not isinstance(data, dict):
        raise TypeError("expected a JSON object")
    points = []
    for raw in data["points"]:
        ft = raw.get("finetune_wer")
        points.append(
            CurvePoint(
                takes=_count(raw["takes"], "takes"),
                base_wer=_wer(raw["base_wer"], "base_wer"),
                maml_wer=_wer(raw["maml_wer"], "maml_wer"),
                finetune_wer=None if ft is None else _wer(ft, "finetune_wer"),
                speakers=_count(raw["speakers"], "speakers"),
            )
        )
    if not points:
        raise ValueError("no points")
    takes = [p.takes for p in points]
    if takes != sorted(set(takes)):
        raise ValueError(f"takes must increase: {takes}")
    by_source = data.get("by_source") or {}
    if not isinstance(by_source, dict):
        raise TypeError("by_source must be an object")
    return LearningCurve(
        measured_with=str(data["measured_with"]),
        model_version=str(data["model_version"]),
        speakers=_count(data["speakers"], "speakers"),
        by_source={str(k): _count(v["speakers"], "by_source speakers") for k, v in by_source.items()},
        points=tuple(points),
    )


def relative_gain(base: float, other: float | None) -> float | None:
    """How much lower `other` is than `base`, as a share of `base` (None: not measured)."""
    if other is None or base <= 0:
        return None
    return (base - other) / base


def curve_caption(curve: LearningCurve, shipped_version: str | None = None) -> str:
    """What was measured, on whom and with which command, in a sentence or three."""
    sources = ", ".join(f"{n} from {name}" for name, n in sorted(curve.by_source.items()))
    who = f"{curve.speakers} held-out speaker{'s' if curve.speakers != 1 else ''}"
    text = (
        f"Word error rate on phrases each speaker did not enroll with, after enrolling with N "
        f"takes, averaged over {who}{f' ({sources})' if sources else ''} that the model never "
        f"trained on; speech model {curve.model_version}. Lower is better."
    )
    if shipped_version and shipped_version != curve.model_version:
        text += f" This installation ships speech model {shipped_version}: the curve was measured on a different one."
    return f"{text} Measured with: {curve.measured_with}"


def curve_summary(curve: LearningCurve) -> str:
    """One line per point, e.g. "20 takes: 10.7 % -> 8.9 % (17 % fewer errors)"."""
    lines = []
    for p in curve.points:
        line = f"{p.takes} takes: base {p.base_wer:.1%}, adapted {p.maml_wer:.1%}"
        gain = relative_gain(p.base_wer, p.maml_wer)
        if gain is not None:
            line += f" ({fewer_errors(gain)})"
        if p.finetune_wer is not None:
            line += f"; plain fine-tuning {p.finetune_wer:.1%}"
        lines.append(line)
    return "\n".join(lines)


def fewer_errors(gain: float) -> str:
    """A relative gain in words: "33% fewer errors" (or "more" for a loss)."""
    return f"{gain:.0%} fewer errors" if gain >= 0 else f"{-gain:.0%} more errors"


def _wer(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite WER >= 0, not {value!r}")
    return float(value)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    return value
