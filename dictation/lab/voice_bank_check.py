"""How much of each bank entry a new voice should get, measured on training speakers.

A cluster's delta is the inner loop's change on utterances of that cluster's speakers; it
helps a new voice only as far as it carries over to speakers it did not learn from. So
each entry's share is chosen by a leave-speakers-out check inside its own cluster: the
members are split in two halves, the delta is learnt again from the first half alone, and
the second half's held-back utterances (ones no delta ever learnt from) are scored by
token log-loss with the initial values plus ``s`` times that delta, for every ``s`` in
`ENTRY_SCALES`. The entry keeps the largest ``s`` that lowers the loss on average by at
least `MIN_GAIN` while leaving at most `MAX_WORSE_SHARE` of those speakers worse; else 0,
so that its cluster's voices start at the initial values (a start that does not carry
over costs a voice more than it gains: the zero-step bars count speakers made worse).

Only training speakers are read: the validation and test splits stay for judging.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.inner_loop import batch_loss, make_batches, resolve_precision
from dictation.adapt.learner import Learner
from dictation.adapt.model.bundle import Bundle
from dictation.adapt.model.loader import backbone_dir
from dictation.adapt.procedure import precision_of
from dictation.app.audio import load_audio
from dictation.app.decoding import load_tokenizer_and_rules
from dictation.lab.corpus.readers import Utterance, read_manifest
from dictation.lab.meta_tasks import speakers_by_split
from dictation.lab.voice_bank import PER_SPEAKER, cluster_items

ENTRY_SCALES = (0.0, 0.5, 1.0)
MIN_GAIN = 0.01  # mean relative loss change an entry must reach to be used at all
MAX_WORSE_SHARE = 0.2  # share of checked speakers whose loss may rise by more than WORSE_BY
WORSE_BY = 0.01


@dataclass
class EntryCheck:
    """One entry's check: relative loss change of each checked speaker at each scale."""

    entry: int
    learnt_from: list[str]
    checked: list[str]
    changes: dict[float, list[float]]  # scale -> per checked speaker, loss_s / loss_0 - 1
    chosen: float

    def summary(self) -> dict:
        return {
            "entry": self.entry,
            "learnt_from": len(self.learnt_from),
            "checked": len(self.checked),
            "mean_change": {str(s): round(float(np.mean(v)), 4) for s, v in self.changes.items()},
            "worse_share": {str(s): round(worse_share(v), 3) for s, v in self.changes.items()},
            "scale": self.chosen,
        }


def worse_share(changes: Sequence[float]) -> float:
    return float(np.mean([c > WORSE_BY for c in changes])) if changes else 0.0


def choose_scale(changes: dict[float, list[float]]) -> float:
    """The largest scale that helps on average and leaves few checked speakers worse; 0
    when none does (see the module docstring)."""
    for scale in sorted(changes, reverse=True):
        values = changes[scale]
        if scale > 0 and values and float(np.mean(values)) <= -MIN_GAIN and worse_share(values) <= MAX_WORSE_SHARE:
            return scale
    return 0.0


def split_members(members: list[str]) -> tuple[list[str], list[str]]:
    """(learnt from, checked): every other member, so both halves span the cluster."""
    ordered = sorted(members)
    return ordered[0::2], ordered[1::2]


def held_back(utts: list[Utterance], skip: int, count: int) -> list[Utterance]:
    """`count` utterances after the first `skip` (those the bank's deltas may learn from)."""
    return sorted(utts, key=lambda u: str(u.audio_path))[skip : skip + count]


def check_entries(
    bundle: Bundle,
    members: dict[int, list[str]],
    corpus: Path,
    per_cluster: int,
    steps: int,
    per_speaker: int = PER_SPEAKER,
    held_per_speaker: int = 2,
    log: Callable[[str], None] = print,
) -> list[EntryCheck]:
    """The check of every entry (in entry order); an entry whose cluster has fewer than two
    members with held-back speech keeps scale 1 (nothing to check it on) and says so."""
    speakers = speakers_by_split(read_manifest(corpus), 1)["train"]
    tok, _ = load_tokenizer_and_rules(backbone_dir())
    model = bundle.model.eval()
    learner = Learner.from_bundle(bundle)
    precision = resolve_precision(precision_of(bundle))
    init = {n: v.detach().clone() for n, v in learner.init.items()}
    checks: list[EntryCheck] = []
    t0 = time.monotonic()
    try:
        for j in sorted(members):
            learn, check = split_members([m for m in members[j] if m in speakers])
            held = {s: held_back(speakers[s], per_speaker, held_per_speaker) for s in check}
            held = {s: u for s, u in held.items() if u}
            if not learn or not held:
                checks.append(EntryCheck(j, learn, [], {}, 1.0))
                log(f"[voice bank check] entry {j + 1}: too few speakers to check, scale 1")
                continue
            items = cluster_items(speakers, learn, per_cluster, per_speaker)
            fast, _ = learner.adapt(make_batches(model, tok, items), steps, precision=precision)
            delta = {n: (fast[n] - init[n]).float() for n in learner.names}
            changes: dict[float, list[float]] = {s: [] for s in ENTRY_SCALES if s > 0}
            with torch.no_grad():
                for utts in held.values():
                    batches = make_batches(model, tok, [(load_audio(u.audio_path), u.text) for u in utts])
                    base = float(batch_loss(model, None, batches))
                    for scale in changes:
                        values = {n: init[n] + scale * delta[n].to(init[n].dtype) for n in learner.names}
                        changes[scale].append(float(batch_loss(model, values, batches)) / base - 1.0)
            entry = EntryCheck(j, learn, sorted(held), changes, choose_scale(changes))
            checks.append(entry)
            means = ", ".join(f"{s:g}: {np.mean(v):+.1%} ({worse_share(v):.0%} worse)" for s, v in changes.items())
            log(
                f"[voice bank check] entry {j + 1}/{len(members)}: learnt from {len(learn)}, checked on "
                f"{len(held)} speakers; loss {means}; scale {entry.chosen:g} ({time.monotonic() - t0:.0f} s)"
            )
    finally:
        learner.restore()
    return checks
