"""`dictation train-voice`: the voice space (embedding head, bank, threshold) for a bundle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-voice",
        help="train the voice space of a bundle: speaker embedding, bank of adaptation starts (resumable)",
        description=(
            "Reads pooled encoder states of the corpus speakers (cached in RUN_DIR), trains the voice "
            "embedding with the GE2E loss on the train split, picks the verification threshold on the "
            "validation split, clusters the training speakers and adapts the bundle to each cluster; "
            "writes OUT (a copy of the bundle with voice_space.npz). Every stage is kept in RUN_DIR "
            "and skipped when it is there."
        ),
    )
    p.add_argument("--corpus", type=Path, default=None, help="corpus dir (default: the cache's corpus)")
    p.add_argument("--bundle", type=Path, default=None, help="bundle to build on (default: the bundled one)")
    p.add_argument("--run-dir", type=Path, default=Path("runs/voice"))
    p.add_argument("--out", type=Path, default=None, help="bundle dir to write (default: RUN_DIR/bundle)")
    p.add_argument("--per-speaker", type=int, default=24, help="utterances read per speaker")
    p.add_argument("--layers", default="0,1,2,3,4", help="encoder layers the head reads (0: the stem)")
    p.add_argument("--head-steps", type=int, default=1500)
    p.add_argument("--clusters", type=int, default=8, help="bank entries (0: no bank, the embedding only)")
    p.add_argument("--per-cluster", type=int, default=40, help="utterances each cluster adapts on")
    p.add_argument("--bank-steps", type=int, default=10, help="inner steps of each cluster's adaptation")
    p.add_argument("--sharpness", type=float, default=20.0, help="softmax sharpness over the centroids")
    p.add_argument("--scale", type=float, default=1.0, help="share of the bank's delta applied")
    p.add_argument(
        "--min-similarity", type=float, default=-1.0, help="voices less similar to every centroid start at the init"
    )
    p.add_argument(
        "--no-entry-check",
        dest="entry_check",
        action="store_false",
        help="give every bank entry its full delta, without checking it on the cluster's other speakers",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_train_voice)


def _train_voice(args: argparse.Namespace) -> int:
    import torch

    from dictation.lab.corpus.common import default_corpus_dir
    from dictation.lab.voice_recipe import VoiceRecipe, run_recipe

    torch.set_num_threads(args.threads)
    recipe = VoiceRecipe(
        corpus=args.corpus or default_corpus_dir(),
        run_dir=args.run_dir,
        out=args.out or args.run_dir / "bundle",
        bundle=args.bundle,
        per_speaker=args.per_speaker,
        layers=tuple(int(x) for x in args.layers.split(",")),
        head_steps=args.head_steps,
        clusters=args.clusters,
        per_cluster=args.per_cluster,
        bank_steps=args.bank_steps,
        entry_check=args.entry_check,
        sharpness=args.sharpness,
        scale=args.scale,
        min_similarity=args.min_similarity,
        seed=args.seed,
    )
    summary = run_recipe(recipe)
    print(json.dumps(summary) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0
