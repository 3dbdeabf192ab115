"""Pooled encoder states of corpus speakers, read once and cached (resumable).

`collect_states` reads up to `per_speaker` utterances of every speaker of a split with the
bundle's unadapted encoder (`StateReader`) and keeps them in one .npz per split in the run
directory; a rerun reads only the speakers the cache does not hold yet.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dictation.adapt.model.bundle import Bundle
from dictation.adapt.voice_space.states import StateReader
from dictation.app.audio import load_audio
from dictation.lab.corpus.readers import Utterance, read_manifest
from dictation.lab.meta_tasks import speakers_by_split

SpeakerStates = dict[str, np.ndarray]  # speaker -> (utterances, layers, width)


def load_cache(path: Path) -> tuple[SpeakerStates, dict[str, str]]:
    """The cached states and each speaker's source ({} and {} when there is no cache)."""
    if not path.is_file():
        return {}, {}
    with np.load(path) as z:
        states = {k[7:]: z[k] for k in z.files if k.startswith("states/")}
        sources = {k[7:]: str(z[k]) for k in z.files if k.startswith("source/")}
    return states, sources


def _save_cache(path: Path, states: SpeakerStates, sources: dict[str, str]) -> None:
    arrays: dict[str, np.ndarray] = {f"states/{k}": v for k, v in states.items()}
    arrays.update({f"source/{k}": np.array(v) for k, v in sources.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)


def collect_states(
    bundle: Bundle,
    corpus: Path,
    split: str,
    per_speaker: int,
    cache: Path,
    min_utterances: int = 12,
    log: Callable[[str], None] = print,
    save_every_s: float = 60.0,
) -> tuple[SpeakerStates, dict[str, str]]:
    """States of the first `per_speaker` utterances (sorted by file) of each `split` speaker
    with at least `min_utterances`, from `cache` plus whatever it lacks (saved as it goes)."""
    speakers: dict[str, list[Utterance]] = speakers_by_split(read_manifest(corpus), min_utterances)[split]
    states, sources = load_cache(cache)
    todo = [s for s in sorted(speakers) if s not in states]
    if not todo:
        return states, sources
    reader = StateReader(bundle.model.eval())
    last_save, t0 = time.monotonic(), time.monotonic()
    for i, spk in enumerate(todo, 1):
        utts = sorted(speakers[spk], key=lambda u: str(u.audio_path))[:per_speaker]
        rows = []
        for u in utts:
            try:
                rows.append(reader.read(load_audio(u.audio_path)))
            except ValueError:
                continue  # too short for a state
        states[spk], sources[spk] = np.stack(rows), utts[0].source
        if time.monotonic() - last_save > save_every_s or i == len(todo):
            _save_cache(cache, states, sources)
            last_save = time.monotonic()
            log(f"[voice states] {split}: {len(states)}/{len(speakers)} speakers ({time.monotonic() - t0:.0f} s)")
    return states, sources
