"""The voice space of a bundle: its embedding head, its bank and the verification
threshold, kept in `voice_space.npz` beside the bundle's weights.

A bundle without that file has no voice space (`load_voice_space` gives None), and the
adaptation then starts from the meta-learned initial values as before.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.model.whisper import Whisper
from dictation.adapt.voice_space.bank import VoiceBank
from dictation.adapt.voice_space.head import VoiceHead
from dictation.adapt.voice_space.states import StateReader

FILE = "voice_space.npz"


class VoiceSpaceError(RuntimeError):
    """A bundle's voice space file cannot be read."""


@dataclass
class VoiceSpace:
    head: VoiceHead
    bank: VoiceBank | None
    threshold: float  # cosine to a profile's prototype below which a take is another voice
    info: dict = field(default_factory=dict)

    def embed(self, model: Whisper, audios: Sequence[np.ndarray]) -> np.ndarray:
        """The unit prototype of these utterances, read with `model`'s encoder as it is now
        (give it the bundle's initial values: the space was trained on those)."""
        reader = StateReader(model)
        states = [reader.read(a) for a in audios if a.size >= 0.3 * 16000]
        if not states:
            raise ValueError("no utterance is long enough to place the voice")
        with torch.no_grad():
            emb = self.head(torch.from_numpy(np.stack(states))).numpy()
        mean = emb.mean(0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-8)).astype(np.float32)

    def save(self, bundle_dir: Path) -> Path:
        arrays = {f"head/{k}": v for k, v in self.head.to_arrays().items()}
        if self.bank is not None:
            arrays.update({f"bank/{k}": v for k, v in self.bank.to_arrays().items()})
        arrays["threshold"] = np.array(self.threshold, np.float32)
        arrays["info"] = np.array(json.dumps(self.info))
        path = Path(bundle_dir) / FILE
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.close(fd)
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        os.chmod(tmp, 0o644)  # a bundle file like the others (mkstemp makes it private)
        os.replace(tmp, path)
        return path


def load_voice_space(bundle_dir: Path) -> VoiceSpace | None:
    """The bundle's voice space, or None when it has none."""
    path = Path(bundle_dir) / FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        head = VoiceHead.from_arrays({k[5:]: v for k, v in arrays.items() if k.startswith("head/")})
        bank_arrays = {k[5:]: v for k, v in arrays.items() if k.startswith("bank/")}
        bank = VoiceBank.from_arrays(bank_arrays) if bank_arrays else None
        return VoiceSpace(head, bank, float(arrays["threshold"]), json.loads(str(arrays["info"])))
    except (OSError, ValueError, KeyError, RuntimeError, zipfile.BadZipFile) as exc:
        raise VoiceSpaceError(f"{path} cannot be read: {exc}") from exc
