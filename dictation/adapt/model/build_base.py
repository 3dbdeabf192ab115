"""Build the ONNX export of the bundled model: `python -m dictation.adapt.model.build_base --out DIR`.

Run once per bundle version by `dictation.app.base_model.base_model_dir()` in a subprocess (it needs torch).
A bundle with a voice space (`voice_space.npz`) also gets `voice.onnx` and `voice.json` in DIR
(`dictation.adapt.voice_space.export`); one whose voice graph fails its parity check is
exported without them (said on stderr), and the app then works as without a voice space.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from dictation.adapt.export import QUANTIZE_CHOICES, export_model
from dictation.adapt.model.bundle import load_bundle
from dictation.adapt.model.loader import backbone_dir


def build(out: Path, bundle_path: Path | None = None, quantize: str = "all") -> dict:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    bundle = load_bundle(bundle_path)
    bdir = backbone_dir()
    info = export_model(
        bundle.model,
        out,
        bdir / "tokenizer.json",
        bdir / "config.json",
        metadata={"model_version": bundle.info["version"], "adapted": False},
        quantize=quantize,
    )
    info["voice"] = add_voice(out, bundle.path)
    return info


def add_voice(out: Path, bundle_path: Path) -> dict | None:
    """Write the bundle's voice graph into the finished export `out`; its voice.json, or
    None when the bundle has no voice space or the graph failed its parity check."""
    from dictation.adapt.voice_space.export import VoiceExportParityError, export_bundle_voice

    try:
        return export_bundle_voice(bundle_path, out)
    except VoiceExportParityError as exc:
        print(f"no voice graph: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument(
        "--quantize",
        default="all",
        choices=QUANTIZE_CHOICES,
        help="which decoder matrices are int8 (default all, as shipped; others for comparison)",
    )
    args = parser.parse_args(argv)
    info = build(args.out, args.bundle, args.quantize)
    print(f"exported {info['model_version']} to {args.out} (parity: {info['parity']})", file=sys.stderr)
    if info["voice"] is not None:
        print(f"voice graph: dim {info['voice']['dim']}, parity {info['voice']['parity']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
