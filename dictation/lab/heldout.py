"""Held-out evaluation over a corpus split (`dictation evaluate --heldout`): which
speakers, their enrollment and test phrases, and `evaluate_speaker` on each; with
`takes` (`--takes 10,20,40,80`), each speaker enrolled on the first N phrases for each N
and tested on the same phrases every time, and the gains by N (`gains_by_takes`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dictation.adapt.model.bundle import Bundle
from dictation.app.audio import load_audio
from dictation.lab.corpus.readers import Utterance, read_manifest
from dictation.lab.evaluate import evaluate_speaker, faster_whisper_wer
from dictation.lab.meta_tasks import speakers_by_split


def reference_wers(test: list[tuple[np.ndarray, str]]) -> dict:
    """Stock Whisper tiny.en (faster-whisper) on the test phrases: at its default beam, the
    figure the bars compare with, and greedy (the reference before the app decoded with a beam)."""
    return {"whisper_tiny_wer": faster_whisper_wer(test), "whisper_tiny_greedy_wer": faster_whisper_wer(test, beam=1)}


def heldout_speakers(
    corpus: Path, split: str, n_utterances: int, wanted: list[str], max_speakers: int = 0
) -> dict[str, list[Utterance]]:
    """The `split` speakers with at least `n_utterances` usable utterances: `wanted` (a
    ValueError names any that are not there), else all of them sorted; the first
    `max_speakers` (0: all)."""
    speakers = speakers_by_split(read_manifest(corpus), n_utterances)[split]
    unknown = [s for s in wanted if s not in speakers]
    if unknown:
        raise ValueError(f"not in the {split} split with enough utterances: {', '.join(unknown)}")
    names = (wanted or sorted(speakers))[: max_speakers or None]
    return {name: speakers[name] for name in names}


def evaluate_heldout(
    speakers: dict[str, list[Utterance]],
    n_enroll: int,
    n_test: int,
    bundle: Bundle,
    steps: int | None = None,
    reference: bool = False,
    takes: Sequence[int] | None = None,
    **options: Any,
) -> Iterator[dict]:
    """Per speaker, in turn: `evaluate_speaker` (with `options`) enrolled on the first
    `n_enroll` of their phrases (sorted by file) and tested on the next `n_test`, with
    the speaker's name and corpus source, and the faster-whisper reference if asked.

    `takes`: instead of `n_enroll`, one result per N in it (with ``takes``: N), enrolled
    on the first N phrases and tested on the `n_test` after the largest N, the same
    phrases for every N (the reference is scored once and given to each N's row)."""
    counts = sorted(set(takes)) if takes else [n_enroll]
    most = counts[-1]
    for spk, utts in speakers.items():
        us = sorted(utts, key=lambda u: str(u.audio_path))
        items = [(load_audio(u.audio_path), u.text) for u in us[: most + n_test]]
        test = items[most:]
        scored: dict | None = None
        for n in counts:
            res = evaluate_speaker(items[:n], test, steps, bundle, **options)
            res.update({"speaker": spk, "source": us[0].source})
            if takes:
                res["takes"] = n
            if reference:
                scored = scored if scored is not None else reference_wers(test)
                res.update(scored)
            res.pop("examples", None)
            yield res


def gains_by_takes(rows: list[dict]) -> list[dict]:
    """For each number of takes in `rows` (their ``takes``): the speakers, the steps the
    adaptation took, the mean WERs, and the held-out gains of the MAML init and of plain
    fine-tuning (as `report.summarize`: MAML over the base, fine-tuning over the stock
    weights it starts from), and MAML's WER less fine-tuning's."""
    out = []
    for n in sorted({r["takes"] for r in rows if "takes" in r}):
        group = [r for r in rows if r.get("takes") == n]
        entry: dict[str, Any] = {"takes": n, "speakers": len(group), "steps": sorted({r["steps"] for r in group})}
        for key in ("base_wer", "adapted_wer", "finetune_wer", "stock_unpadded_wer"):
            values = [r[key] for r in group if r.get(key) is not None]
            if values:
                entry["mean_" + key] = float(np.mean(values))
        entry["maml_gain"] = entry["mean_base_wer"] - entry["mean_adapted_wer"]
        if "mean_finetune_wer" in entry:
            start = entry.get("mean_stock_unpadded_wer", entry["mean_base_wer"])
            entry["finetune_gain"] = start - entry["mean_finetune_wer"]
            entry["maml_minus_finetune_wer"] = entry["mean_adapted_wer"] - entry["mean_finetune_wer"]
        out.append(entry)
    return out


def takes_table(gains: list[dict]) -> str:
    """`gains_by_takes` as text lines (evaluate --takes without --json)."""
    fmt = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
    lines = ["takes  steps  base    MAML    fine-tune  MAML gain  fine-tune gain"]
    for g in gains:
        lines.append(
            f"{g['takes']:>5}  {'/'.join(map(str, g['steps'])):>5}  {fmt(g.get('mean_base_wer')):>6}  "
            f"{fmt(g.get('mean_adapted_wer')):>6}  {fmt(g.get('mean_finetune_wer')):>9}  "
            f"{fmt(g.get('maml_gain')):>9}  {fmt(g.get('finetune_gain')):>14}"
        )
    return "\n".join(lines)
