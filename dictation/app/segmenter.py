"""Cut a stream of speech into pieces the encoder can take, at pauses (numpy only).

The encoder sees at most ~29 s at once (its 1500 positions), so longer speech is cut.
A cut always falls in the middle of a quiet stretch, so no word is split, lost or heard
twice; only when `window_s` of audio holds no quiet stretch at all is it cut at the
quietest 20 ms (a hard cut). Two ways of cutting, one class:

- whole files (`eager_pause_s=None`): once `window_s` (25 s) is buffered, cut at the
  longest pause in it; anything shorter than the window stays one piece, as before.
- live dictation (`eager_pause_s` set): also cut as soon as a pause that long follows at
  least `eager_min_s` of audio, so each spoken stretch is decoded while the user goes on
  talking and only the tail is left at key release.

"Quiet" is relative to the stream: a frame is quiet when it is nearer the noise floor
(10th percentile of the frame levels so far) than the loudest frame, so pauses are
found in a noisy room as in digital silence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dictation.app.runtime import MIN_SPEECH_SECONDS, SAMPLE_RATE, SILENCE_DBFS, frame_dbfs

FRAME = 320  # 20 ms
FRAMES_PER_SECOND = SAMPLE_RATE // FRAME
_BINS = np.arange(-120, 61)  # 1 dB level histogram (louder than full scale included)


@dataclass
class Segment:
    """A piece of the stream: 16 kHz mono float32 samples from `start` (stream index)."""

    audio: np.ndarray
    start: int
    speech: bool  # holds enough frames above the speech threshold to be worth decoding
    hard_cut: bool = False  # ended without a pause (continuous speech for a whole window)

    @property
    def end(self) -> int:
        return self.start + len(self.audio)

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE


def quiet_runs(quiet: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) frame ranges of the runs of True in `quiet`."""
    padded = np.concatenate([[False], quiet, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


class PauseSegmenter:
    """Fed 16 kHz mono samples in chunks of any size; hands back finished `Segment`s."""

    def __init__(
        self,
        window_s: float = 25.0,
        eager_pause_s: float | None = None,
        eager_min_s: float = 3.0,
        min_pause_s: float = 0.1,
    ) -> None:
        self.window = int(window_s * FRAMES_PER_SECOND)
        self.eager_half = int(eager_pause_s * FRAMES_PER_SECOND / 2) if eager_pause_s else 0
        self.eager_min = int(eager_min_s * FRAMES_PER_SECOND)
        self.min_pause = max(1, int(min_pause_s * FRAMES_PER_SECOND))
        self._hist = np.zeros(len(_BINS), np.int64)
        self._start = 0  # stream index of the first pending sample
        self._pending: list[np.ndarray] = []  # whole frames not yet handed out
        self._db = np.zeros(0)  # their levels
        self._rest = np.zeros(0, np.float32)  # a partial frame, waiting for more samples

    @property
    def pending_seconds(self) -> float:
        return (len(self._db) * FRAME + len(self._rest)) / SAMPLE_RATE

    def push(self, samples: np.ndarray) -> list[Segment]:
        """Add samples; return the segments that ended in them (often none)."""
        a = np.concatenate([self._rest, np.asarray(samples, np.float32).reshape(-1)])
        whole = len(a) // FRAME * FRAME
        self._rest = a[whole:].copy()
        if whole:
            db = frame_dbfs(a[:whole], FRAME)
            idx = np.clip(np.round(db).astype(np.int64) - _BINS[0], 0, len(_BINS) - 1)
            self._hist += np.bincount(idx, minlength=len(_BINS))
            self._pending.append(a[:whole])
            self._db = np.concatenate([self._db, db])
        out = []
        while (cut := self._find_cut()) is not None:
            out.append(self._take(*cut))
        return out

    def flush(self) -> list[Segment]:
        """The rest of the stream as a last segment (none if nothing is pending)."""
        if self._rest.size:
            self._pending.append(self._rest)
            self._db = np.concatenate([self._db, frame_dbfs(np.pad(self._rest, (0, FRAME - self._rest.size)))])
            self._rest = np.zeros(0, np.float32)
        if not self._pending:
            return []
        return [self._take(len(self._db), False)]

    # -- levels ---------------------------------------------------------------------------

    def _levels(self) -> tuple[float, float]:
        """(floor, peak) of the frame levels seen so far, in dBFS."""
        seen = np.flatnonzero(self._hist)
        cumulative = np.cumsum(self._hist)
        floor = _BINS[int(np.searchsorted(cumulative, 0.1 * cumulative[-1]))]
        return float(floor), float(_BINS[seen[-1]])

    def _quiet_threshold(self) -> float:
        floor, peak = self._levels()
        return floor + float(np.clip(0.3 * (peak - floor), 6.0, 30.0))

    def _is_speech(self, db: np.ndarray) -> bool:
        """Enough frames above the quiet threshold, the absolute silence level and the
        speech trimmer's relative floor (`runtime.speech_bounds`) to hold a word."""
        _, peak = self._levels()
        loud = db > max(self._quiet_threshold(), SILENCE_DBFS, peak - 45.0)
        return int(loud.sum()) >= MIN_SPEECH_SECONDS * FRAMES_PER_SECOND

    # -- cutting ----------------------------------------------------------------------------

    def _find_cut(self) -> tuple[int, bool] | None:
        """(frame to cut at, hard cut?) or None when the pending audio stays together."""
        n = len(self._db)
        if n == 0:
            return None
        quiet = self._db < self._quiet_threshold()
        if self.eager_half:
            h = self.eager_half
            for start, stop in quiet_runs(quiet):
                cut = max(start + h, self.eager_min)
                if cut + h <= stop and cut < self.window:
                    return cut, False
        if n < self.window:
            return None
        runs = [(max(a, 1), min(b, self.window)) for a, b in quiet_runs(quiet[: self.window]) if a > 0]
        runs = [(a, b) for a, b in runs if b - a >= self.min_pause]
        if runs:  # the longest pause; of equal ones the latest (fewer, longer pieces)
            a, b = max(runs, key=lambda r: (r[1] - r[0], r[0]))
            return (a + b) // 2, False
        half = self.window // 2
        return half + int(np.argmin(self._db[half : self.window])), True

    def _take(self, frames: int, hard: bool) -> Segment:
        """Hand out the first `frames` pending frames as a segment."""
        audio = np.concatenate(self._pending) if len(self._pending) != 1 else self._pending[0]
        samples = min(len(audio), frames * FRAME)
        seg = Segment(audio[:samples].copy(), self._start, self._is_speech(self._db[:frames]), hard)
        self._pending = [audio[samples:]] if samples < len(audio) else []
        self._db = self._db[frames:]
        self._start += samples
        return seg
