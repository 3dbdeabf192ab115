"""Meta-training tasks: a task is one speaker of the corpus, drawn, loaded and augmented.

`TaskSampler` draws cheap task plans (speaker, files, augmentation seed); `load_task`
reads and augments one; `TaskStream` loads them ahead in worker processes.
"""

from __future__ import annotations

import random
import zlib
from typing import TYPE_CHECKING

import numpy as np

from dictation.adapt.augment import Augmenter, with_speed_copies
from dictation.app.audio import load_audio
from dictation.lab.corpus.readers import Utterance
from dictation.lab.corpus.splits import tasks_by_split

if TYPE_CHECKING:
    from dictation.lab.meta_train import TrainConfig

MIN_SECONDS, MAX_SECONDS = 0.6, 12.0
# Per-speaker sampling weights: real voices (FOTAQ) most; espeak-ng's 175 formant-synthesis
# variants are robotic and would otherwise make up over half of all tasks.
SOURCE_WEIGHTS = {"fotaq": 3.0, "espeak": 0.5}


def speakers_by_split(utts: list[Utterance], min_utts: int) -> dict[str, dict[str, list[Utterance]]]:
    """{split: {speaker: utterances}}, keeping usable lengths and speakers with enough of them."""
    usable = [u for u in utts if u.duration is None or MIN_SECONDS <= u.duration <= MAX_SECONDS]
    return {
        split: {k: v for k, v in speakers.items() if len(v) >= min_utts}
        for split, speakers in tasks_by_split(usable).items()
    }


class TaskSampler:
    def __init__(self, speakers: dict[str, list[Utterance]], cfg: TrainConfig, rng: random.Random) -> None:
        self.speakers = sorted(speakers)
        self.utts = speakers
        self.cfg = cfg
        self.rng = rng
        self.weights = [cfg.source_weights.get(speakers[s][0].source, 1.0) for s in self.speakers]
        if not any(self.weights):
            raise SystemExit("every training speaker has sampling weight 0 (--source-weights)")

    def draw(self) -> tuple:
        """A task plan (speaker, files, texts, augmentation seed or None, support size,
        support speed copies): cheap."""
        spk = self.rng.choices(self.speakers, self.weights)[0]
        chosen = self.rng.sample(self.utts[spk], self.cfg.support + self.cfg.query)
        seed = self.rng.randrange(1 << 30)
        augment = self.rng.random() < self.cfg.augment_prob
        return (
            spk,
            [str(u.audio_path) for u in chosen],
            [u.text for u in chosen],
            seed if augment else None,
            self.cfg.support,
            tuple(self.cfg.support_speed_copies),
        )

    def sample(self) -> tuple[str, list[tuple[np.ndarray, str]], list[tuple[np.ndarray, str]]]:
        return load_task(self.draw())


def load_task(plan: tuple) -> tuple[str, list[tuple[np.ndarray, str]], list[tuple[np.ndarray, str]]]:
    """Read and augment a drawn task: (speaker, support items + their speed copies, query items)."""
    spk, paths, texts, seed, n_support, copies = plan
    items = []
    for path, text in zip(paths, texts):
        audio = load_audio(path)
        if seed is not None:  # same seed per utterance: one consistent voice/channel per task
            audio = Augmenter(seed).apply(audio)
        items.append((audio, text))
    return spk, with_speed_copies(items[:n_support], copies), items[n_support:]


class TaskStream:
    """Tasks from a sampler, loaded `ahead` at a time by worker processes when workers > 0.

    On a GPU the decoding and augmentation of 16 utterances per task would otherwise
    keep the accelerator waiting.
    """

    def __init__(self, sampler: TaskSampler, workers: int, ahead: int = 16) -> None:
        self.sampler = sampler
        self.pool = None
        self.pending: list = []
        if workers > 0:
            import multiprocessing as mp

            self.pool = mp.get_context("spawn").Pool(workers)
            self.pending = [self.pool.apply_async(load_task, (sampler.draw(),)) for _ in range(ahead)]

    def next(self):
        if self.pool is None:
            return self.sampler.sample()
        result = self.pending.pop(0)
        self.pending.append(self.pool.apply_async(load_task, (self.sampler.draw(),)))
        return result.get()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()


def rank_rng(seed: int, rank: int, resumed_step: int) -> random.Random:
    """Task-drawing generator of a rank: distinct per rank, and per resume.

    The checkpoint keeps rank 0's generator; every other rank restoring that same state
    would draw rank 0's tasks, and averaging identical gradients makes extra GPUs useless.
    """
    return random.Random(f"{seed}:{rank}:{resumed_step}")


def task_label(task: tuple) -> str:
    """Short name of a loaded task for the log: speaker and a checksum of its phrases."""
    spk, support, query = task
    return f"{spk}:{zlib.crc32(chr(10).join(t for _, t in support + query).encode()):08x}"
