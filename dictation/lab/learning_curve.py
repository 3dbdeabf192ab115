"""The learning curve as data the app reads without torch: `dictation evaluate --heldout
--takes 10,20,40 --json` rows -> ``learning_curve.json`` (`dictation.app.learning_curve`
reads it back and the "What I learned" page plots it).

Each point is a mean over the same speakers (those measured at every number of takes;
rows of a speaker measured at only some are left out); its gains are
relative to the base WER of the same speakers (the model a user has before adapting):
``maml_gain`` = 1 - maml_wer / base_wer, ``finetune_gain`` likewise for plain
fine-tuning (rows of `evaluate` without --no-finetune).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dictation.app.learning_curve import CURVE_FILE, parse_curve, relative_gain

__all__ = ["CURVE_FILE", "curve_from_rows", "read_rows", "write_curve"]


def read_rows(path: Path) -> list[dict]:
    """The per-speaker rows of an `evaluate --json` output (summary lines and anything
    that is not JSON are skipped); a later row for the same speaker and takes replaces an
    earlier one (a resumed run appended to the same file)."""
    rows: dict[tuple[str, int], dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict) or "speaker" not in row or "base_wer" not in row:
            continue
        takes = row.get("takes", row.get("n_enroll"))
        if not isinstance(takes, int):
            continue
        rows[(str(row["speaker"]), takes)] = {**row, "takes": takes}
    return list(rows.values())


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _point(group: list[dict]) -> dict[str, Any]:
    """Means of one number of takes' rows, with the gains over base."""
    base = _mean([r["base_wer"] for r in group])
    maml = _mean([r["adapted_wer"] for r in group])
    point: dict[str, Any] = {
        "takes": group[0]["takes"],
        "speakers": len(group),
        "base_wer": base,
        "maml_wer": maml,
        "maml_gain": relative_gain(base, maml),
    }
    tuned = [r for r in group if r.get("finetune_wer") is not None]
    if tuned:
        # Over the speakers fine-tuned, against those speakers' own base WER.
        ft_base = _mean([r["base_wer"] for r in tuned])
        point["finetune_wer"] = _mean([r["finetune_wer"] for r in tuned])
        point["finetune_gain"] = relative_gain(ft_base, point["finetune_wer"])
        if len(tuned) != len(group):
            point["finetune_speakers"] = len(tuned)
    return point


def _points(rows: Iterable[dict]) -> list[dict[str, Any]]:
    by_takes: dict[int, list[dict]] = {}
    for row in rows:
        by_takes.setdefault(row["takes"], []).append(row)
    return [_point(by_takes[n]) for n in sorted(by_takes)]


def curve_from_rows(rows: list[dict], measured_with: str, model_version: str) -> dict[str, Any]:
    """The ``learning_curve.json`` content of `rows` (see the module docstring)."""
    rows = [r for r in rows if r.get("adapted_wer") is not None]
    if not rows:
        raise ValueError("no per-speaker rows with base_wer and adapted_wer")
    # Every point averages the same speakers: one measured at only some N (a run stopped
    # part way) would move the means between points by who was measured, not by N.
    counts = {r["takes"] for r in rows}
    measured: dict[str, set[int]] = {}
    for row in rows:
        measured.setdefault(str(row["speaker"]), set()).add(row["takes"])
    complete = {s for s, ns in measured.items() if ns == counts}
    if not complete:
        raise ValueError(f"no speaker was measured at every number of takes ({sorted(counts)})")
    rows = [r for r in rows if str(r["speaker"]) in complete]
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(str(row.get("source") or "unknown"), []).append(row)
    curve = {
        "measured_with": measured_with,
        "model_version": model_version,
        "speakers": len({r["speaker"] for r in rows}),
        "by_source": {
            name: {"speakers": len({r["speaker"] for r in group}), "points": _points(group)}
            for name, group in sorted(by_source.items())
        },
        "points": _points(rows),
    }
    parse_curve(curve)  # what the app will accept, checked before it is written
    return curve


def write_curve(curve: dict[str, Any], out: Path) -> Path:
    """Write `curve` as JSON to `out` (a file, or a bundle dir: its ``learning_curve.json``),
    atomically so the app never reads half a file; returns the path written."""
    path = out / CURVE_FILE if out.is_dir() else out
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(curve, fh, indent=2)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # world-readable like the bundle's other files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
