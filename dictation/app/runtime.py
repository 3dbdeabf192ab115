"""onnxruntime-only transcription: the dictation hot path. Never imports torch.

`Transcriber(model_dir)` keeps warm encoder/decoder sessions; `transcribe(audio)` trims
leading/trailing silence, runs the encoder once, then decodes with a key/value cache and
runaway guards: beam search (the hypotheses in one batch per step) or greedy (beam 1);
the loops and rules are shared with the torch model in `dictation.app.decoding`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dictation.app import resources
from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.decoding import (
    BEAM_CANDIDATES,
    DEFAULT_BEAM,
    DecodingRules,
    TextTokenizer,
    beam_decode,
    check_beam,
    greedy_decode,
    rescore_shortlist,
)

MIN_SPEECH_SECONDS = 0.12
SILENCE_DBFS = -50.0  # frames quieter than this (and far below the peak) count as silence
TRIM_MARGIN_S = 0.2  # keep this much around detected speech (soft word edges)


class ModelMissingError(RuntimeError):
    """No usable ONNX model directory."""


@dataclass
class Transcript:
    text: str
    seconds: float  # decode time (model load excluded)
    audio_seconds: float
    tokens: list[int] = field(default_factory=list)
    encoder_seconds: float = 0.0
    beam: int = 1  # the beam width it was decoded with (1: greedy)


def to_mono_16k(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """float32 mono at 16 kHz from (n,) or (n, channels) input at any rate."""
    a = np.asarray(audio)
    if a.ndim == 2:
        a = a.mean(axis=1)
    elif a.ndim != 1:
        raise ValueError(f"audio must be 1-D or (samples, channels), got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / np.iinfo(a.dtype).max
    a = a.astype(np.float32, copy=False)
    if sample_rate != SAMPLE_RATE and len(a):
        from dictation.app.audio import resample

        a = resample(a, sample_rate, SAMPLE_RATE)
    return np.nan_to_num(a)


def speech_bounds(audio: np.ndarray, frame: int = 320) -> tuple[int, int] | None:
    """(start, end) sample indices of the non-silent region, or None if all silence."""
    n = len(audio) // frame
    if n == 0:
        return None
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    db = 20 * np.log10(rms)
    peak = db.max()
    if peak < SILENCE_DBFS:
        return None
    active = np.flatnonzero(db > max(SILENCE_DBFS, peak - 45.0))
    margin = int(TRIM_MARGIN_S * SAMPLE_RATE)
    start = max(0, active[0] * frame - margin)
    end = min(len(audio), (active[-1] + 1) * frame + margin)
    if end - start < MIN_SPEECH_SECONDS * SAMPLE_RATE:
        return None
    return start, end


class Transcriber:
    """Warm onnxruntime sessions for one exported model directory."""

    def __init__(self, model_dir: Path, threads: int | None = None, beam: int = DEFAULT_BEAM) -> None:
        import onnxruntime as ort

        self.beam = check_beam(beam)

        model_dir = Path(model_dir)
        for name in ("encoder.onnx", "decoder.onnx", "tokenizer.json", "config.json", "model.json"):
            if not (model_dir / name).is_file():
                raise ModelMissingError(f"{model_dir} is not a complete model: {name} is missing")
        self.model_dir = model_dir
        self.info = json.loads((model_dir / "model.json").read_text())
        # Format >= 2: numpy embeds the tokens and rescores the int8 projection's shortlist.
        # Memory-mapped, so only the rows used are resident. Format 1 (tokens in, float
        # logits out) is still read: profiles exported by older versions keep working.
        self._format = int(self.info.get("format_version", 1))
        if self._format >= 2:
            for name in ("embedding.npy", "positions.npy"):
                if not (model_dir / name).is_file():
                    raise ModelMissingError(f"{model_dir} is not a complete model: {name} is missing")
            self._embedding = np.load(model_dir / "embedding.npy", mmap_mode="r")
            self._positions = np.load(model_dir / "positions.npy")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: an idle dictation app must not burn CPU, and spinning
        # threads fight the desktop's other work (2 threads ran ~2x slower than 1 under load).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(model_dir / "encoder.onnx"), opts, providers=providers)
        self.decoder = ort.InferenceSession(str(model_dir / "decoder.onnx"), opts, providers=providers)
        self.tokenizer = TextTokenizer(model_dir / "tokenizer.json")
        self.rules = DecodingRules.from_config(model_dir / "config.json")
        cfg = self.info["whisper_config"]
        self._empty = np.zeros((cfg["n_text_layers"], 1, 0, cfg["d_model"]), np.float32)
        # Exports from format 4 on take several hypotheses per decoder run (a symbolic batch
        # axis); older ones are run a hypothesis at a time, with the same result.
        self.batched = isinstance(self.decoder.get_inputs()[0].shape[0], str)

    @property
    def model_version(self) -> str:
        return str(self.info.get("model_version", "unknown"))

    def transcribe(self, audio: np.ndarray, sample_rate: int = SAMPLE_RATE, beam: int | None = None) -> Transcript:
        """Text for one utterance; silent or empty audio gives empty text. `beam`: this
        call's beam width (default: the transcriber's; 1 is greedy)."""
        beam = self.beam if beam is None else check_beam(beam)
        t0 = time.perf_counter()
        a = to_mono_16k(audio, sample_rate)
        audio_seconds = len(a) / SAMPLE_RATE
        bounds = speech_bounds(a)
        if bounds is None:
            return Transcript("", time.perf_counter() - t0, audio_seconds, beam=beam)
        a = np.ascontiguousarray(a[bounds[0] : bounds[1]])
        cross_k, cross_v = self.encoder.run(None, {"audio": a[None]})
        t_enc = time.perf_counter() - t0
        cache = [self._empty, self._empty]  # (layers, hypotheses, positions, d)

        def run(rows: list[list[int]]) -> np.ndarray:
            """Feed one token list per hypothesis (all the same length) after the cache;
            grow the cache; return (hypotheses, vocab) logits."""
            if not self.batched and len(rows) > 1:
                caches, outs = cache[:], []
                parts_k, parts_v = [], []
                for j, row in enumerate(rows):
                    cache[0], cache[1] = caches[0][:, j : j + 1], caches[1][:, j : j + 1]
                    outs.append(run([row])[0])
                    parts_k.append(cache[0])
                    parts_v.append(cache[1])
                cache[0], cache[1] = np.concatenate(parts_k, axis=1), np.concatenate(parts_v, axis=1)
                return np.stack(outs)
            if self._format < 2:
                logits, cache[0], cache[1] = self.decoder.run(
                    None,
                    {
                        "tokens": np.array(rows, np.int64),
                        "cross_k": cross_k,
                        "cross_v": cross_v,
                        "self_k": cache[0],
                        "self_v": cache[1],
                    },
                )
                return logits
            offset = cache[0].shape[2]
            n = len(rows[0])
            x = self._embedding[np.array(rows)].astype(np.float32) + self._positions[offset : offset + n]
            approx, hidden, cache[0], cache[1] = self.decoder.run(
                None, {"x": x, "cross_k": cross_k, "cross_v": cross_v, "self_k": cache[0], "self_v": cache[1]}
            )
            # A beam ranks this many candidates per hypothesis: each is rescored exactly.
            extra = beam + BEAM_CANDIDATES if beam > 1 else 0
            return np.stack(
                [rescore_shortlist(approx[j], hidden[j], self._embedding, at_least=extra) for j in range(len(rows))]
            )

        def step(tokens: list[int]) -> np.ndarray:
            return run([tokens])[0]

        def beam_step(parents: list[int], rows: list[list[int]]) -> np.ndarray:
            if cache[0].shape[1] != len(parents) or parents != list(range(len(parents))):
                cache[0], cache[1] = cache[0][:, parents], cache[1][:, parents]
            return run(rows)

        seconds = len(a) / SAMPLE_RATE
        if beam == 1:
            tokens = greedy_decode(step, self.rules, audio_seconds=seconds)
        else:
            tokens = beam_decode(beam_step, self.rules, audio_seconds=seconds, beam=beam)
        text = self.tokenizer.decode(tokens)
        return Transcript(text, time.perf_counter() - t0, audio_seconds, tokens, t_enc, beam)


BUNDLE_NAME = "dictation-tiny-en"
# Written by dictation.adapt.export into model.json; part of the base export's cache key, so a
# new export format never reuses a stale cached base model.
EXPORT_FORMAT_VERSION = 4  # 2: int8 projection only; 3: every decoder matrix int8; 4: batch axis


def bundled_model_dir() -> Path:
    """The committed model bundle (`models/` in a checkout, or a frozen app's data folder)."""
    found = resources.find(f"models/{BUNDLE_NAME}/bundle.json")
    if found is None:
        raise ModelMissingError(
            f"the bundled model (models/{BUNDLE_NAME}/bundle.json) is missing from this installation"
        )
    return found.parent


def bundled_model_version() -> str:
    """Version of the bundled speech model (``bundle.json``), e.g. "0.5.0"."""
    path = bundled_model_dir() / "bundle.json"
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelMissingError(f"the bundled model's {path} is unreadable: {exc}") from exc


@functools.lru_cache(maxsize=8)
def _bundle_digest(stamps: tuple[tuple[str, int, int], ...]) -> str:
    """Content hash of the bundle files, computed once per (path, mtime, size): the GUI asks
    for the base model on every dictation and must not re-read the weights each time."""
    digest = hashlib.sha256()
    for path, _, _ in stamps:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def base_model_dir() -> Path:
    """ONNX export of the bundled model, built once into the cache if missing.

    The build needs torch and runs in a subprocess, so this process stays torch-free.
    A frozen app has no torch: it ships a prebuilt export as `models/base-onnx`.
    """
    from dictation.app.storage import cache_root

    if getattr(sys, "frozen", False):
        shipped = resources.find("models/base-onnx/model.json")
        if shipped is not None:
            return shipped.parent
    bundle = bundled_model_dir()
    version = bundled_model_version()
    # Keyed by content too: a retrained bundle must never reuse a stale export.
    files = tuple(bundle / n for n in ("bundle.json", "weights.npz") if (bundle / n).is_file())
    stamps = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    out = cache_root() / "models" / f"base-{version}-f{EXPORT_FORMAT_VERSION}-{_bundle_digest(stamps)}"
    if (out / "model.json").is_file():
        return out
    proc = subprocess.run(
        [sys.executable, "-m", "dictation.adapt.model.build_base", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not (out / "model.json").is_file():
        raise ModelMissingError(f"could not build the base model: {proc.stderr.strip()[-2000:]}")
    return out
