"""Held-out evaluation over a corpus split (`dictation evaluate --heldout`): which
speakers, their enrollment and test phrases, and `evaluate_speaker` on each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dictation.adapt.model.bundle import Bundle
from dictation.app.audio import load_audio
from dictation.lab.corpus.readers import Utterance, read_manifest
from dictation.lab.evaluate import evaluate_speaker, faster_whisper_wer
from dictation.lab.meta_train import speakers_by_split


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
    **options: Any,
) -> Iterator[dict]:
    """Per speaker, in turn: `evaluate_speaker` (with `options`) enrolled on the first
    `n_enroll` of their phrases (sorted by file) and tested on the next `n_test`, with
    the speaker's name and corpus source, and the faster-whisper reference if asked."""
    for spk, utts in speakers.items():
        us = sorted(utts, key=lambda u: str(u.audio_path))
        items = [(load_audio(u.audio_path), u.text) for u in us[: n_enroll + n_test]]
        res = evaluate_speaker(items[:n_enroll], items[n_enroll:], steps, bundle, **options)
        res.update({"speaker": spk, "source": us[0].source})
        if reference:
            res.update(reference_wers(items[n_enroll:]))
        res.pop("examples", None)
        yield res
