"""The recipe behind `dictation train-voice`: states -> head -> threshold -> bank -> the
bank's entry check (`voice_bank_check`) -> bundle.

Each stage's result is kept in the run directory and reused by a rerun with the same
settings (the states per speaker, the head, each cluster's delta), so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dictation.adapt.model.bundle import Bundle, load_bundle
from dictation.adapt.voice_space.bank import VoiceBank
from dictation.adapt.voice_space.head import VoiceHead
from dictation.adapt.voice_space.space import VoiceSpace
from dictation.lab.voice_bank import build_bank
from dictation.lab.voice_bank_check import check_entries
from dictation.lab.voice_states import collect_states
from dictation.lab.voice_train import HeadConfig, speaker_mean_embeddings, train_head, verification_eer


@dataclass
class VoiceRecipe:
    corpus: Path
    run_dir: Path
    out: Path
    bundle: Path | None = None
    per_speaker: int = 24
    layers: tuple[int, ...] = (0, 1, 2, 3, 4)
    head_steps: int = 1500
    clusters: int = 8
    per_cluster: int = 40
    bank_steps: int = 10
    sharpness: float = 20.0
    scale: float = 1.0
    min_similarity: float = -1.0
    entry_check: bool = True
    seed: int = 0


def _stage_key(**values: object) -> str:
    return json.dumps(values, sort_keys=True, default=str)


def _head(recipe: VoiceRecipe, bundle: Bundle, log: Callable[[str], None]) -> tuple[VoiceHead, dict]:
    run = recipe.run_dir
    train, _ = collect_states(bundle, recipe.corpus, "train", recipe.per_speaker, run / "states-train.npz", log=log)
    val, _ = collect_states(
        bundle, recipe.corpus, "validation", recipe.per_speaker, run / "states-validation.npz", log=log
    )
    cfg = HeadConfig(layers=recipe.layers, steps=recipe.head_steps, seed=recipe.seed)
    key = _stage_key(head=asdict(cfg), speakers=sorted(train), per_speaker=recipe.per_speaker)
    path = run / "head.npz"
    if path.is_file():
        with np.load(path) as z:
            if str(z["key"]) == key:
                head = VoiceHead.from_arrays({k[5:]: z[k] for k in z.files if k.startswith("head/")})
                return head, json.loads(str(z["report"]))
    head, history = train_head(train, cfg, val, log=log)
    eer, threshold = verification_eer(head, val)
    report = {
        "validation_eer": round(eer, 4),
        "threshold": round(threshold, 4),
        "train_speakers": len(train),
        "history": history,
    }
    arrays = {f"head/{k}": v for k, v in head.to_arrays().items()}
    np.savez(path, key=np.array(key), report=np.array(json.dumps(report)), **arrays)  # type: ignore[arg-type]
    return head, report


def _bank(recipe: VoiceRecipe, bundle: Bundle, head: VoiceHead, log: Callable[[str], None]) -> tuple[VoiceBank, dict]:
    from dictation.lab.voice_states import load_cache

    train, _ = load_cache(recipe.run_dir / "states-train.npz")
    prototypes = speaker_mean_embeddings(head, train)
    key = _stage_key(
        speakers=sorted(train),
        clusters=recipe.clusters,
        per_cluster=recipe.per_cluster,
        steps=recipe.bank_steps,
        seed=recipe.seed,
        head=float(sum(float(v.sum()) for v in head.state_dict().values())),
    )
    path = recipe.run_dir / "bank.npz"
    if path.is_file():
        with np.load(path) as z:
            if str(z["key"]) == key:
                bank = VoiceBank.from_arrays({k[5:]: z[k] for k in z.files if k.startswith("bank/")})
                return bank, json.loads(str(z["members"]))
    bank, members = build_bank(
        bundle, prototypes, recipe.corpus, recipe.clusters, recipe.per_cluster, recipe.bank_steps, recipe.seed, log
    )
    arrays = {f"bank/{k}": v for k, v in bank.to_arrays().items()}
    np.savez(path, key=np.array(key), members=np.array(json.dumps(members)), **arrays)  # type: ignore[arg-type]
    return bank, {str(k): v for k, v in members.items()}


def _entry_scales(
    recipe: VoiceRecipe, bundle: Bundle, bank: VoiceBank, members: dict[str, list[str]], log: Callable[[str], None]
) -> tuple[np.ndarray, list[dict]]:
    """Each entry's share from its leave-speakers-out check (cached like the other stages)."""
    key = _stage_key(
        members=members,
        per_cluster=recipe.per_cluster,
        steps=recipe.bank_steps,
        centroids=float(bank.centroids.sum()),
    )
    path = recipe.run_dir / "entry_scales.npz"
    if path.is_file():
        with np.load(path) as z:
            if str(z["key"]) == key:
                return np.asarray(z["scales"], np.float32), json.loads(str(z["report"]))
    checks = check_entries(
        bundle, {int(k): v for k, v in members.items()}, recipe.corpus, recipe.per_cluster, recipe.bank_steps, log=log
    )
    scales = np.array([c.chosen for c in checks], np.float32)
    report = [c.summary() for c in checks]
    np.savez(path, key=np.array(key), scales=scales, report=np.array(json.dumps(report)))
    return scales, report


def run_recipe(recipe: VoiceRecipe, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) every stage; write the bundle with its voice space; a summary."""
    t0 = time.monotonic()
    recipe.run_dir.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(recipe.bundle) if recipe.bundle else load_bundle()
    head, report = _head(recipe, bundle, log)
    bank, members = (None, {}) if recipe.clusters <= 0 else _bank(recipe, bundle, head, log)
    entry_report: list[dict] = []
    if bank is not None:
        bank.sharpness, bank.scale, bank.min_similarity = recipe.sharpness, recipe.scale, recipe.min_similarity
        if recipe.entry_check:
            bank.entry_scales, entry_report = _entry_scales(recipe, bundle, bank, members, log)
    if recipe.out.resolve() != bundle.path.resolve():
        shutil.rmtree(recipe.out, ignore_errors=True)
        shutil.copytree(bundle.path, recipe.out)
    info = {
        "layers": list(recipe.layers),
        "validation_eer": report["validation_eer"],
        "train_speakers": report["train_speakers"],
        "clusters": {k: len(v) for k, v in members.items()},
        "entry_check": entry_report,
        "recipe": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(recipe).items()},
    }
    VoiceSpace(head, bank, report["threshold"], info).save(recipe.out)
    return {
        "out": str(recipe.out),
        "validation_eer": report["validation_eer"],
        "threshold": report["threshold"],
        "train_speakers": report["train_speakers"],
        "bank_entries": 0 if bank is None else bank.size,
        "entry_scales": None if bank is None or bank.entry_scales is None else bank.entry_scales.tolist(),
        "minutes": round((time.monotonic() - t0) / 60, 1),
    }
