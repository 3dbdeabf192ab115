"""A profile's voice: the embeddings of its enrollment takes, kept in `voice.npz`.

The file is a cache of what the takes say (it can always be computed again from them):
per take id its unit embedding, and the voice graph's model version, since embeddings of
another graph are not comparable. It is written atomically through the profile's write
guard; a damaged or outdated file is simply computed again. Profile exports leave it out
(an imported profile computes it from its takes).
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dictation.app import storage
from dictation.app.voice.embedder import VoiceEmbedder, prototype

log = logging.getLogger(__name__)

VOICE_FILE = "voice.npz"


@dataclass
class ProfileVoice:
    """Embeddings of a profile's takes by take id, from the voice graph of `model_version`."""

    model_version: str
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)

    def prototype(self, without: str | None = None) -> np.ndarray | None:
        """Unit mean of the takes' embeddings (`without`: leaving that take out); None for none."""
        return prototype([e for take_id, e in sorted(self.embeddings.items()) if take_id != without])

    def count(self, without: str | None = None) -> int:
        return sum(1 for take_id in self.embeddings if take_id != without)

    def to_bytes(self) -> bytes:
        ids = sorted(self.embeddings)
        buffer = io.BytesIO()
        dim = len(next(iter(self.embeddings.values()))) if ids else 0
        matrix = np.stack([self.embeddings[i] for i in ids]) if ids else np.zeros((0, dim), np.float32)
        np.savez(buffer, ids=np.array(ids, dtype=str), embeddings=matrix, model_version=np.array(self.model_version))
        return buffer.getvalue()


def load_voice(path: Path) -> ProfileVoice | None:
    """The record at `path`; None when missing or unreadable (it is computed again)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, matrix, version = z["ids"], z["embeddings"], str(z["model_version"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        log.warning("the voice file %s is unreadable and is computed again: %s", path, exc)
        return None
    if matrix.ndim != 2 or len(ids) != len(matrix):
        return None
    return ProfileVoice(version, {str(i): np.asarray(e, np.float32) for i, e in zip(ids, matrix, strict=True)})


def read_prototype(profile_dir: Path, model_version: str) -> np.ndarray | None:
    """Another profile's voice prototype, read only; None without a current one."""
    record = load_voice(Path(profile_dir) / VOICE_FILE)
    if record is None or record.model_version != model_version:
        return None
    return record.prototype()


def update_profile_voice(
    profile: Any, embedder: VoiceEmbedder, known: dict[str, np.ndarray] | None = None
) -> ProfileVoice | None:
    """Bring the profile's voice up to date with its enrollment takes: embed the takes it
    lacks (`known`: embeddings already computed, by take id), drop removed ones, save if
    anything changed. None when no voice graph is available."""
    if not embedder.available:
        return None
    from dictation.app.audio import load_audio

    path = Path(profile.path) / VOICE_FILE
    record = load_voice(path)
    changed = record is None or record.model_version != embedder.model_version
    if record is None or changed:
        record = ProfileVoice(embedder.model_version)
    takes = profile.takes()
    current = {take.id for take in takes}
    for take_id in [i for i in record.embeddings if i not in current]:
        del record.embeddings[take_id]
        changed = True
    for take in takes:
        if take.id in record.embeddings:
            continue
        embedding = (known or {}).get(take.id)
        if embedding is None:
            try:
                embedding = embedder.embed(load_audio(take.wav_path))
            except Exception as exc:  # one unreadable recording never stops the rest
                log.warning("take %s gives no voice embedding: %s", take.id, exc)
                continue
        if embedding is not None:
            record.embeddings[take.id] = np.asarray(embedding, np.float32)
            changed = True
    if changed:
        with profile.location.writing():
            storage.atomic_write_bytes(path, record.to_bytes(), make_parents=False)
    return record
