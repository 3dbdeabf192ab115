"""`VoiceEmbedder`: a clip's unit voice embedding from `voice.onnx`, and the comparisons.

The graph (`dictation.adapt.voice_space.export`) reads the encoder with the bundle's
initial values, so embeddings do not move when a profile's model is adapted. `voice.json`
gives the verification threshold: a take whose cosine to a profile's prototype is below
it sounds like another voice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.runtime import speech_bounds, to_mono_16k

log = logging.getLogger(__name__)

GRAPH = "voice.onnx"
INFO = "voice.json"
MIN_SECONDS = 0.3  # shorter speech gives no embedding (as the training's StateReader)
# The encoder holds 30 s; a voice is placed well from far less, so a long take is cut here.
MAX_SECONDS = 20.0


def prototype(embeddings: Sequence[np.ndarray]) -> np.ndarray | None:
    """The unit mean of unit embeddings (None for none)."""
    if not len(embeddings):
        return None
    mean = np.mean(np.stack([np.asarray(e, np.float32) for e in embeddings]), axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-8)).astype(np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two unit vectors."""
    return float(np.dot(np.asarray(a, np.float32), np.asarray(b, np.float32)))


class VoiceEmbedder:
    """Warm onnxruntime session of `model_dir/voice.onnx`; `available` is False (and
    `problem` says why) when the folder has no usable voice graph."""

    def __init__(self, model_dir: Path | None, threads: int = 1) -> None:
        self.available = False
        self.problem = ""
        self.dim = 0
        self.threshold = 0.0
        self.model_version = ""
        self._session = None
        if model_dir is None:
            self.problem = "no model folder"
            return
        graph, info_path = Path(model_dir) / GRAPH, Path(model_dir) / INFO
        if not (graph.is_file() and info_path.is_file()):
            self.problem = f"{model_dir} has no voice graph (the bundle has no voice space)"
            return
        try:
            import onnxruntime as ort

            info = json.loads(info_path.read_text(encoding="utf-8"))
            self.dim, self.threshold = int(info["dim"]), float(info["threshold"])
            self.model_version = str(info.get("model_version", ""))
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            # An idle app must not spin a core between the rare voice checks.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # a damaged graph or JSON: the voice checks are skipped, dictation goes on
            self.problem = f"the voice graph in {model_dir} cannot be loaded: {' '.join(str(exc).split())[:300]}"
            log.warning("%s", self.problem)
            return
        self.available = True

    def embed(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray | None:
        """The unit embedding of the speech in `audio` (silence around it trimmed, at most
        MAX_SECONDS), or None when it holds under MIN_SECONDS of speech or none is available."""
        if self._session is None:
            return None
        a = to_mono_16k(audio, sample_rate)
        bounds = speech_bounds(a)
        if bounds is None:
            return None
        a = a[bounds[0] : bounds[1]][: int(MAX_SECONDS * SAMPLE_RATE)]
        if a.size < MIN_SECONDS * SAMPLE_RATE:
            return None
        peak = float(np.abs(a).max())
        if peak > 1.0:  # as the transcriber: the log-mel front end is not scale-free
            a = a / peak
        (out,) = self._session.run(None, {"audio": np.ascontiguousarray(a, np.float32)[None]})
        return np.asarray(out, np.float32).reshape(-1)

    def is_other_voice(self, embedding: np.ndarray, voice_prototype: np.ndarray) -> bool:
        """True when `embedding` is farther from `voice_prototype` than the threshold."""
        return similarity(embedding, voice_prototype) < self.threshold

    @staticmethod
    def prototype(embeddings: Sequence[np.ndarray]) -> np.ndarray | None:
        return prototype(embeddings)

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> float:
        return similarity(a, b)
