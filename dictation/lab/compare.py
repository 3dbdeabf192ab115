"""Held-out scoring over speakers, and the paired comparison of two held-out runs
(`evaluate --heldout --json` output).

A new bundle ships only when it measurably improves on the bundled one, on the same
speakers and the same test phrases. This module reads two runs' per-speaker lines, checks
that they scored the same phrases, and reports per source what changed, how many speakers
moved each way, and a bootstrap interval over speakers for the change of mean WER.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WORSE_MARGIN = 1.02  # the bar: no speaker worse than base by more than 2 % relative


def read_rows(path: Path) -> list[dict]:
    """The per-speaker result lines of an `evaluate --heldout --json` output file."""
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip().startswith("{"):
            continue  # a progress or warning line mixed into the output
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not a JSON line ({exc.msg})") from None
        if "speaker" in rec:
            rows.append(rec)
    if not rows:
        raise ValueError(f"{path}: no per-speaker lines (write it with `dictation evaluate --heldout --json`)")
    return rows


def _same_phrases(a: dict, b: dict) -> bool:
    """True when both rows scored the same test phrases, as far as the rows can tell."""
    if a.get("n_test") != b.get("n_test"):
        return False
    ua, ub = a.get("utterances"), b.get("utterances")
    return not (ua and ub) or ua["words"] == ub["words"]


def diff_interval(old: np.ndarray, new: np.ndarray, resamples: int = 2000) -> tuple[float, list[float]]:
    """Mean of new - old over speakers, with a 95 % bootstrap interval (speakers resampled
    with replacement, pairs kept together; fixed seed, so a comparison is reproducible)."""
    d = new - old
    idx = np.random.default_rng(0).integers(0, len(d), size=(resamples, len(d)))
    means = d[idx].mean(axis=1)
    return float(d.mean()), [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def worse_than_base(rows: list[dict], key: str = "adapted_wer") -> list[str]:
    """Speakers whose `key` WER is above base by more than the bar's 2 % relative."""
    return [r["speaker"] for r in rows if r[key] > r["base_wer"] * WORSE_MARGIN + 1e-9]


def relative_gain(rows: list[dict], key: str = "adapted_wer") -> float:
    """1 - mean(key) / mean(base_wer) over speakers (0 when the base makes no errors)."""
    base = float(np.mean([r["base_wer"] for r in rows]))
    return float(1 - np.mean([r[key] for r in rows]) / base) if base > 0 else 0.0


def relative_gain_ci(rows: list[dict], key: str = "adapted_wer", resamples: int = 2000) -> tuple[float, list[float]]:
    """`relative_gain` with a 95 % bootstrap interval (speakers resampled with replacement;
    fixed seed, so a table is reproducible)."""
    base = np.array([r["base_wer"] for r in rows], dtype=float)
    other = np.array([r[key] for r in rows], dtype=float)
    point = relative_gain(rows, key)
    idx = np.random.default_rng(0).integers(0, len(rows), size=(resamples, len(rows)))
    b, o = base[idx].mean(axis=1), other[idx].mean(axis=1)
    gains = np.where(b > 0, 1 - o / np.where(b > 0, b, 1), 0.0)
    return point, [float(np.percentile(gains, 2.5)), float(np.percentile(gains, 97.5))]


def compare(old_rows: list[dict], new_rows: list[dict]) -> dict:
    """Compare two runs on the speakers they share; ValueError if those differ in test phrases."""
    old = {r["speaker"]: r for r in old_rows}
    new = {r["speaker"]: r for r in new_rows}
    shared = sorted(set(old) & set(new))
    if not shared:
        raise ValueError("the two runs share no speaker")
    mismatched = [s for s in shared if not _same_phrases(old[s], new[s])]
    if mismatched:
        raise ValueError(
            "not the same test phrases for: "
            + ", ".join(mismatched)
            + " (compare runs made with the same --n-enroll/--n-test and corpus build)"
        )
    out: dict = {
        "speakers": len(shared),
        "only_old": sorted(set(old) - set(new)),
        "only_new": sorted(set(new) - set(old)),
        "sources": {},
    }
    sources = sorted({old[s]["source"] for s in shared}) + ["all"]
    for src in sources:
        names = [s for s in shared if src == "all" or old[s]["source"] == src]
        o, n = [old[s] for s in names], [new[s] for s in names]
        entry: dict = {"speakers": len(names)}
        for key in ("base_wer", "adapted_wer"):
            a = np.array([r[key] for r in o], dtype=float)
            b = np.array([r[key] for r in n], dtype=float)
            diff, ci = diff_interval(a, b)
            entry[key] = {"old": float(a.mean()), "new": float(b.mean()), "diff": diff, "diff_ci95": ci}
        entry["relative_gain"] = {"old": relative_gain(o), "new": relative_gain(n)}
        entry["worse_than_base"] = {"old": worse_than_base(o), "new": worse_than_base(n)}
        entry["adapted_new_vs_old"] = {
            "better": [s for s in names if new[s]["adapted_wer"] < old[s]["adapted_wer"] - 1e-9],
            "worse": [s for s in names if new[s]["adapted_wer"] > old[s]["adapted_wer"] + 1e-9],
        }
        out["sources"][src] = entry
    return out


def compare_text(result: dict, old_name: str, new_name: str) -> str:
    """A short human-readable report of `compare`'s result."""
    pct = lambda v: f"{100 * v:.1f} %"  # noqa: E731
    lines = [
        f"old: {old_name}",
        f"new: {new_name}",
        f"{result['speakers']} shared speakers"
        + (f"; only in old: {', '.join(result['only_old'])}" if result["only_old"] else "")
        + (f"; only in new: {', '.join(result['only_new'])}" if result["only_new"] else ""),
        "",
        "| source | speakers | base old → new | MAML old → new | MAML change (95 % CI) | relative gain old → new "
        "| worse than base old → new | MAML better / worse / equal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for src, e in result["sources"].items():
        b, a = e["base_wer"], e["adapted_wer"]
        lo, hi = a["diff_ci95"]
        moved = e["adapted_new_vs_old"]
        equal = e["speakers"] - len(moved["better"]) - len(moved["worse"])
        lines.append(
            f"| {src} | {e['speakers']} | {pct(b['old'])} → {pct(b['new'])} | {pct(a['old'])} → {pct(a['new'])} | "
            f"{100 * a['diff']:+.1f} ({100 * lo:+.1f} to {100 * hi:+.1f}) points | "
            f"{e['relative_gain']['old']:.0%} → {e['relative_gain']['new']:.0%} | "
            f"{len(e['worse_than_base']['old'])} → {len(e['worse_than_base']['new'])} | "
            f"{len(moved['better'])} / {len(moved['worse'])} / {equal} |"
        )
    worse = result["sources"]["all"]["worse_than_base"]["new"]
    if worse:
        lines += ["", "new, worse than base by > 2 % relative: " + ", ".join(worse)]
    return "\n".join(lines) + "\n"
