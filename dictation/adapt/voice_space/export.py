"""Export a bundle's voice embedding to ONNX, so the app places a voice without torch.

`voice.onnx`: audio (1, samples) float32 at 16 kHz -> embedding (dim,), a unit vector.
Inside the graph: the log-mel front end, the encoder's stem and the blocks the head reads
(with the bundle's initial values: the space was trained on those), the pooled mean and
standard deviation over time of each of those layers (as `StateReader`), and the head.
`voice.json`: {dim, threshold, model_version, parity}. The graph is written only after it
agrees with torch (`VoiceSpace.embed`) on three clip lengths; `voice.json` is written
last, so a folder holding it holds a checked `voice.onnx`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dictation.adapt.features import LogMel
from dictation.adapt.model.whisper import Whisper, merged_copy
from dictation.adapt.voice_space.head import VoiceHead
from dictation.adapt.voice_space.space import VoiceSpace, load_voice_space

OPSET = 17
GRAPH = "voice.onnx"
INFO = "voice.json"
PARITY_SECONDS = (0.7, 2.3, 5.1)
# A unit vector: cosine to torch's and the largest element difference (both must hold).
MIN_COSINE = 0.999
MAX_ABS = 1e-3


class VoiceExportParityError(RuntimeError):
    """The ONNX voice graph disagrees with torch; nothing was written."""


class VoiceGraph(nn.Module):
    """Waveform (1, samples) -> unit embedding (dim,), as `VoiceSpace.embed` on one clip."""

    def __init__(self, model: Whisper, head: VoiceHead) -> None:
        super().__init__()
        self.front_end = LogMel()
        self.encoder = model.encoder
        self.head = head
        # Blocks past the deepest layer the head reads change nothing it sees.
        self.n_blocks = max(head.layers)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.encoder.embed(self.front_end(audio))
        layers = [x]
        for block in self.encoder.blocks[: self.n_blocks]:
            x, _ = block(x)
            layers.append(x)
        n_layers = len(self.encoder.blocks) + 1
        pooled = [torch.cat([h[0].mean(0), h[0].std(0)]) for h in layers]
        # Layers the head does not read are zeros of the right shape (index_select skips them).
        pooled += [torch.zeros_like(pooled[0])] * (n_layers - len(pooled))
        return self.head(torch.stack(pooled))


def _test_signal(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Speech-like input (noise under a slow envelope, a voiced tone), as the model export uses."""
    n = int(seconds * 16000) + int(rng.integers(0, 160))
    t = np.arange(n) / 16000
    noise = 0.05 * rng.standard_normal(n) * (1 + np.sin(2 * np.pi * 3 * t))
    return (noise + 0.1 * np.sin(2 * np.pi * 220 * t) + 0.03 * np.sin(2 * np.pi * 1250 * t)).astype(np.float32)


def check_voice_parity(model: Whisper, space: VoiceSpace, graph_path: Path, seed: int = 0) -> dict:
    """Compare the graph with `space.embed(model, [clip])` on PARITY_SECONDS clips; raise
    VoiceExportParityError past MIN_COSINE / MAX_ABS."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(graph_path), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    report: dict = {"min_cosine": 1.0, "max_abs": 0.0, "lengths_s": [], "tolerance": [MIN_COSINE, MAX_ABS]}
    for seconds in PARITY_SECONDS:
        audio = _test_signal(seconds, rng)
        ref = space.embed(model, [audio])
        (out,) = session.run(None, {"audio": audio[None]})
        cosine = float(np.dot(ref, out) / max(float(np.linalg.norm(out)), 1e-8))
        err = float(np.abs(ref - out).max())
        report["min_cosine"] = min(report["min_cosine"], cosine)
        report["max_abs"] = max(report["max_abs"], err)
        report["lengths_s"].append(round(audio.size / 16000, 3))
        if cosine < MIN_COSINE or err > MAX_ABS:
            raise VoiceExportParityError(
                f"the voice graph disagrees with torch on a {audio.size / 16000:.2f} s clip: cosine "
                f"{cosine:.5f} (at least {MIN_COSINE}), largest difference {err:.2e} (at most {MAX_ABS:.0e})"
            )
    return report


def export_voice(model: Whisper, space: VoiceSpace, out_dir: Path, model_version: str) -> dict:
    """Write `voice.onnx` and `voice.json` into `out_dir` (which must exist) from `model`
    (the bundle's initial values) and `space`; return voice.json's contents.

    The graph is staged in `out_dir`, checked, then renamed into place; on a parity
    failure (VoiceExportParityError) nothing is written and older files are left as they were.
    """
    model = model.eval()
    out_dir = Path(out_dir)
    graph = VoiceGraph(merged_copy(model), space.head.eval()).eval()
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".voice-", suffix=".onnx")
    os.close(fd)
    staged = Path(tmp)
    try:
        with torch.no_grad():
            torch.onnx.export(
                graph,
                (torch.zeros(1, 32000),),
                str(staged),
                input_names=["audio"],
                output_names=["embedding"],
                dynamic_axes={"audio": {1: "samples"}},
                opset_version=OPSET,
                dynamo=False,
            )
        parity = check_voice_parity(model, space, staged)
        with open(staged, "rb") as fh:
            os.fsync(fh.fileno())
        staged.chmod(0o644)  # mkstemp's 0600 would hide a shipped model from other users
        os.replace(staged, out_dir / GRAPH)
    finally:
        staged.unlink(missing_ok=True)
    info = {
        "dim": int(space.head.dim),
        "threshold": float(space.threshold),
        "model_version": str(model_version),
        "layers": space.head.layers,
        "parity": parity,
    }
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".voice-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, out_dir / INFO)
    return info


def export_bundle_voice(bundle_dir: Path | None, out_dir: Path) -> dict | None:
    """Export the voice space of the bundle at `bundle_dir` (None: the bundled one) into
    `out_dir`; None (and nothing written) when the bundle has no voice space."""
    from dictation.adapt.model.bundle import load_bundle

    bundle = load_bundle(bundle_dir)  # freshly loaded: the initial values the space was trained on
    space = load_voice_space(bundle.path)
    if space is None:
        return None
    return export_voice(bundle.model, space, out_dir, bundle.info["version"])
