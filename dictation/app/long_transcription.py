"""Dictation of any length: speech cut at pauses (`segmenter`), the pieces decoded in order.

Each piece can be decoded with the text before it as the decoder's prompt (Whisper's
<|startofprev|> convention, `use_prompt=True`; the ONNX decoder takes it). It is off by
default: on real recorded speech (6 FOTAQ speakers, 2-2.5 min each, greedy) the prompt
raised WER from 16.2 to 17.7 % (whole-file pieces) and from 17.9 to 18.7 % (live
pieces), and once it dropped a sentence that repeated the prompt's text (Whisper's
known habit of skipping what the prompt already says): a lost sentence is the failure
this module exists to prevent. `python benchmarks/long_dictation.py` prints both.

- `transcribe_blocks(transcriber, blocks)`: a whole recording given as blocks (a file
  read block by block: `audio_file_blocks.read_blocks`), decoded piece by piece; memory
  stays bounded by one window of audio whatever the length.
- `IncrementalDictation`: for the GUI. Fed microphone chunks while the user speaks; each
  piece that ended at a pause is decoded on a background thread meanwhile, so at key
  release only the tail is left to decode. No Qt: a plain listener callback reports
  partial text (on the background thread; a GUI hands it to its own thread).

numpy + the runtime only; never torch.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from dictation.app.decoding import DecodeScore
from dictation.app.runtime import SAMPLE_RATE, Transcriber, Transcript, check_finite
from dictation.app.segmenter import PauseSegmenter, Segment

log = logging.getLogger(__name__)

# Live dictation cuts at the first pause this long after EAGER_MIN_S of speech (see
# benchmarks/long_dictation.py for what these cost and save).
EAGER_PAUSE_S = 0.4
EAGER_MIN_S = 3.0


@dataclass
class SegmentText:
    """One decoded piece: where it lies in the stream and what was said in it."""

    index: int
    text: str
    start_s: float
    end_s: float
    seconds: float  # decode time
    hard_cut: bool = False


PartialListener = Callable[[SegmentText, str], None]
"""Called with each finished piece and the whole text so far."""


def join_texts(parts: Iterable[str]) -> str:
    return " ".join(p.strip() for p in parts if p.strip())


class SegmentDecoder:
    """Decodes segments in order (each prompted with the text so far if `use_prompt`)."""

    def __init__(
        self,
        transcriber: Transcriber,
        beam: int | None = None,
        use_prompt: bool = False,
        previous_text: str = "",
        listener: PartialListener | None = None,
    ) -> None:
        self.transcriber, self.beam, self.use_prompt = transcriber, beam, use_prompt
        self.listener = listener
        self.parts: list[SegmentText] = []
        self.warnings: list[str] = []
        self.tokens: list[int] = []
        self.encoder_seconds = 0.0
        self._context = previous_text
        self._score = DecodeScore()  # the pieces' confidences, weighted by their tokens

    @property
    def text(self) -> str:
        return join_texts(p.text for p in self.parts)

    @property
    def confidence(self) -> float | None:
        """The model's confidence over all pieces (mean token probability, geometric);
        None when no piece was scored."""
        return self._score.confidence

    def decode(self, segment: Segment) -> SegmentText | None:
        """Text of one segment (None for a silent one, which is not decoded)."""
        if not segment.speech:
            return None
        prompt = self._context if self.use_prompt else ""
        result = self.transcriber.transcribe(segment.audio, beam=self.beam, previous_text=prompt)
        self.warnings += [w for w in result.warnings if w not in self.warnings]
        self.tokens += result.tokens
        self.encoder_seconds += result.encoder_seconds
        if result.confidence is not None and result.text.strip():
            weight = len(result.tokens) + 1  # the tokens and the end of text
            self._score.add(weight * math.log(max(result.confidence, 1e-30)), weight)
        piece = SegmentText(
            len(self.parts), result.text, segment.start_s, segment.end_s, result.seconds, segment.hard_cut
        )
        if not result.text.strip():
            return None
        self.parts.append(piece)
        self._context = join_texts([self._context, result.text])
        if self.listener is not None:
            try:
                self.listener(piece, self.text)
            except Exception:  # a listener's bug must not lose the dictation
                log.exception("partial-text listener failed")
        return piece


def transcribe_blocks(
    transcriber: Transcriber,
    blocks: Iterable[np.ndarray],
    beam: int | None = None,
    listener: PartialListener | None = None,
    use_prompt: bool = False,
    segmenter: PauseSegmenter | None = None,
) -> Transcript:
    """Text of a recording given as 16 kHz mono float32 blocks, decoded as it is read."""
    t0 = time.perf_counter()
    cutter = segmenter or PauseSegmenter()
    decoder = SegmentDecoder(transcriber, beam, use_prompt, listener=listener)
    samples = 0
    for block in blocks:
        samples += len(block)
        for segment in cutter.push(block):
            decoder.decode(segment)
    for segment in cutter.flush():
        decoder.decode(segment)
    return Transcript(
        decoder.text,
        time.perf_counter() - t0,
        samples / SAMPLE_RATE,
        decoder.tokens,
        decoder.encoder_seconds,
        transcriber.beam if beam is None else beam,
        decoder.warnings,
        len(decoder.parts),
        decoder.confidence,
    )


def transcribe_long(
    transcriber: Transcriber, audio: np.ndarray, beam: int | None = None, previous_text: str = ""
) -> Transcript:
    """In-memory speech longer than the encoder's window (`Transcriber.transcribe` calls
    this), cut into whole-file pieces."""
    cutter = PauseSegmenter()
    decoder = SegmentDecoder(transcriber, beam, use_prompt=bool(previous_text), previous_text=previous_text)
    t0 = time.perf_counter()
    for segment in [*cutter.push(audio), *cutter.flush()]:
        decoder.decode(segment)
    return Transcript(
        decoder.text,
        time.perf_counter() - t0,
        len(audio) / SAMPLE_RATE,
        decoder.tokens,
        decoder.encoder_seconds,
        transcriber.beam if beam is None else beam,
        decoder.warnings,
        len(decoder.parts),
        decoder.confidence,
    )


_STOP = None


class IncrementalDictation:
    """One dictation, fed while the user speaks; pieces decoded in the background.

    `feed(chunk)` returns at once (it only measures levels and cuts); a piece that ended
    at a pause is queued to one background thread, which decodes the pieces in order,
    and calls `listener(piece, text_so_far)` after each.
    `finish()` decodes the tail and returns the whole text; `cancel()` drops it all.
    A decoding error is raised again by `finish()`. `previous_text` (what came before,
    e.g. the editor's text) is used only with `use_prompt=True`.
    """

    def __init__(
        self,
        transcriber: Transcriber,
        beam: int | None = None,
        listener: PartialListener | None = None,
        previous_text: str = "",
        segmenter: PauseSegmenter | None = None,
        use_prompt: bool = False,
    ) -> None:
        self._cutter = segmenter or PauseSegmenter(eager_pause_s=EAGER_PAUSE_S, eager_min_s=EAGER_MIN_S)
        self._decoder = SegmentDecoder(transcriber, beam, use_prompt, previous_text, listener)
        self._queue: queue.Queue[Segment | None] = queue.Queue()
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._work, name="dictation-pieces", daemon=True)
        self._thread.start()

    @property
    def text(self) -> str:
        """The text decoded so far (pieces that ended at a pause)."""
        return self._decoder.text

    @property
    def confidence(self) -> float | None:
        """The model's confidence in the pieces decoded so far (see `SegmentDecoder`)."""
        return self._decoder.confidence

    @property
    def pieces(self) -> list[SegmentText]:
        return list(self._decoder.parts)

    @property
    def warnings(self) -> list[str]:
        return list(self._decoder.warnings)

    def feed(self, chunk: np.ndarray) -> None:
        """Add 16 kHz mono float32 samples (InvalidAudioError for NaN/infinite ones)."""
        if self._finished:
            raise RuntimeError("this dictation is finished; start a new one")
        a = np.asarray(chunk, np.float32)
        if a.ndim == 2:
            a = a.mean(axis=1)
        check_finite(a)
        for segment in self._cutter.push(a):
            self._queue.put(segment)

    def finish(self, timeout: float | None = None) -> str:
        """Decode what is left after the last pause; the whole text of the dictation."""
        if not self._finished:
            self._finished = True
            for segment in self._cutter.flush():
                self._queue.put(segment)
            self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the dictation is still being decoded")
        if self._error is not None:
            raise self._error
        return self._decoder.text

    def cancel(self) -> None:
        """Stop decoding and drop the dictation (returns at once; the piece being decoded
        finishes in the background)."""
        self._finished = True
        self._cancelled.set()
        self._queue.put(_STOP)

    def _work(self) -> None:
        while (segment := self._queue.get()) is not _STOP:
            if self._cancelled.is_set() or self._error is not None:
                continue
            try:
                self._decoder.decode(segment)
            except BaseException as exc:  # handed to finish(): never lost on a thread
                self._error = exc
