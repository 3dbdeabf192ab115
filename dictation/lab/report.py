"""Reports of a held-out evaluation (`dictation evaluate --heldout`): a line per speaker,
the summary over speakers (means, gains, speakers worse than base and how sure that is)
and the markdown tables the model card quotes. JSON keys are a contract: extend, never
rename."""

from __future__ import annotations

from typing import Any

import numpy as np

from dictation.lab.compare import WORSE_MARGIN, relative_gain_ci, worse_than_base


def speaker_line(r: dict) -> str:
    """One speaker's result as a line of text (evaluate without --json)."""
    parts = [f"{r.get('speaker', '')}", f"base {r['base_wer']:.1%}", f"adapted {r['adapted_wer']:.1%}"]
    if "gated_wer" in r:
        parts.append(f"gated {r['gated_wer']:.1%}{'' if r['gate_installed'] else ' (kept base)'}")
    if "finetune_wer" in r:
        parts.append(f"finetune {r['finetune_wer']:.1%}")
    if r.get("whisper_tiny_wer") is not None:
        parts.append(f"whisper-tiny {r['whisper_tiny_wer']:.1%}")
    parts.append(f"adapt {r['adapt_seconds']:.1f}s")
    return "  ".join(parts)


def summarize(rows: list[dict]) -> dict:
    """Means over speakers, the MAML and fine-tuning gains, the speakers worse than base
    (and in how many resamples of their phrases), the relative gain with its interval."""
    if not rows:
        return {"speakers": 0}
    keys = [
        "base_wer",
        "adapted_wer",
        "gated_wer",
        "finetune_wer",
        "stock_unpadded_wer",
        "whisper_tiny_wer",
        "whisper_tiny_greedy_wer",
        "adapt_seconds",
        "voice_space_zero_wer",
        "voice_space_wer",
        "voice_space_seconds",
    ]
    s: dict[str, Any] = {"speakers": len(rows)}
    for k in keys:
        vals = [r[k] for r in rows if r.get(k) is not None]
        if vals:
            s["mean_" + k] = float(np.mean(vals))
    if "mean_finetune_wer" in s:
        gain_maml = s["mean_base_wer"] - s["mean_adapted_wer"]
        gain_ft = s.get("mean_stock_unpadded_wer", s["mean_base_wer"]) - s["mean_finetune_wer"]
        s["maml_gain"], s["finetune_gain"] = gain_maml, gain_ft
        # How much lower MAML's WER is than fine-tuning's, as a share of MAML's gain over base.
        if gain_maml > 0:
            s["maml_advantage_share"] = (s["mean_finetune_wer"] - s["mean_adapted_wer"]) / gain_maml
    s["worse_than_base"] = worse_than_base(rows)
    probs = {r["speaker"]: worse_probability(r) for r in rows if "utterances" in r}
    if probs:
        # With 15 test phrases one word is more than 2 % relative for most speakers: how
        # often would a resample of the phrases show the speaker worse?
        s["worse_probability"] = {k: round(v, 3) for k, v in probs.items() if k in s["worse_than_base"]}
        s["worse_than_base_95"] = [k for k, v in probs.items() if v >= 0.95]
    s["relative_gain"], s["relative_gain_ci95"] = relative_gain_ci(rows)
    for key in ("voice_space_zero_wer", "voice_space_wer"):
        scored = [r for r in rows if r.get(key) is not None]
        if scored:
            name = key.removesuffix("_wer")
            s[name + "_relative_gain"], s[name + "_relative_gain_ci95"] = relative_gain_ci(scored, key)
            s[name + "_worse_than_base"] = worse_than_base(scored, key)
    if any("gated_wer" in r for r in rows):
        s["gated_worse_than_base"] = worse_than_base([r for r in rows if "gated_wer" in r], "gated_wer")
        s["gate_kept_base"] = [r["speaker"] for r in rows if r.get("gate_installed") is False]
    return s


def worse_probability(row: dict, margin: float = WORSE_MARGIN, resamples: int = 2000) -> float:
    """Share of paired resamples of a speaker's test phrases (with replacement; fixed seed)
    in which the adapted WER exceeds `margin` x the base WER."""
    u = row["utterances"]
    words, base, adapted = (np.array(u[k], dtype=float) for k in ("words", "base_errors", "adapted_errors"))
    idx = np.random.default_rng(0).integers(0, len(words), size=(resamples, len(words)))
    # Same phrases, so the same word count on both sides: compare error counts.
    return float(np.mean(adapted[idx].sum(axis=1) > margin * base[idx].sum(axis=1) + 1e-9))


def markdown_table(rows: list[dict], summary: dict) -> str:
    """The per-speaker table, the per-source means and the worse-than-base note (--table)."""
    head = (
        "| speaker | source | base WER | fine-tune WER | MAML WER | MAML, cross-checked (app) | "
        "Whisper tiny.en WER (beam 5) | adapt s |\n|---|---|---|---|---|---|---|---|\n"
    )
    fmt = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
    body = "".join(
        f"| {r['speaker']} | {r['source']} | {fmt(r['base_wer'])} | {fmt(r.get('finetune_wer'))} | "
        f"{fmt(r['adapted_wer'])} | {fmt(r.get('gated_wer'))}{'' if r.get('gate_installed', True) else ' (base kept)'} | "
        f"{fmt(r.get('whisper_tiny_wer'))} | {r['adapt_seconds']:.1f} |\n"
        for r in rows
    )
    mean = (
        f"| **mean** | | {fmt(summary.get('mean_base_wer'))} | {fmt(summary.get('mean_finetune_wer'))} | "
        f"{fmt(summary.get('mean_adapted_wer'))} | {fmt(summary.get('mean_gated_wer'))} | "
        f"{fmt(summary.get('mean_whisper_tiny_wer'))} | "
        f"{summary.get('mean_adapt_seconds', 0):.1f} |\n"
    )
    worse = ""
    if "worse_probability" in summary:
        worse = (
            f"\nSpeakers worse than base after MAML by > 2 % relative: {len(summary['worse_than_base'])}; "
            f"worse in >= 95 % of resamples of their test phrases: {len(summary['worse_than_base_95'])}"
            + "".join(f"\n- {k}: {v:.0%} of resamples" for k, v in summary["worse_probability"].items())
            + "\n"
        )
    beams = sorted({r["beam"] for r in rows if "beam" in r})
    decoding = "" if not beams else "Our models decode with beam " + ", ".join(map(str, beams)) + " (1 = greedy).\n\n"
    return decoding + head + body + mean + "\n" + source_table(rows) + worse


def source_table(rows: list[dict]) -> str:
    """Per-source means (per-speaker WER averaged), plus all speakers."""
    cols = [
        ("base", "base_wer"),
        ("MAML", "adapted_wer"),
        ("MAML, app check", "gated_wer"),
        ("fine-tune", "finetune_wer"),
        ("stock weights, our input", "stock_unpadded_wer"),
        ("Whisper tiny.en (beam 5)", "whisper_tiny_wer"),
        ("Whisper tiny.en, greedy", "whisper_tiny_greedy_wer"),
        ("voice space, zero steps", "voice_space_zero_wer"),
        ("voice space + MAML", "voice_space_wer"),
    ]
    cols = [(t, k) for t, k in cols if any(r.get(k) is not None for r in rows)]
    groups = sorted({r["source"] for r in rows}) + ["all"]
    out = (
        "| source | speakers | "
        + " | ".join(t for t, _ in cols)
        + " | MAML gain, relative (95 % CI) |\n|---|---|"
        + "---|" * (len(cols) + 1)
        + "\n"
    )
    for g in groups:
        rs = rows if g == "all" else [r for r in rows if r["source"] == g]
        vals = []
        for _, k in cols:
            v = [r[k] for r in rs if r.get(k) is not None]
            vals.append(f"{np.mean(v):.1%}" if v else "n/a")
        gain, (lo, hi) = relative_gain_ci(rs)
        vals.append(f"{gain:.0%} ({lo:.0%} to {hi:.0%})")
        out += f"| {g} | {len(rs)} | " + " | ".join(vals) + " |\n"
    return out
