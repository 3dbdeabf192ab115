"""onnxruntime-only transcription: the dictation hot path. Never imports torch.

`Transcriber(model_dir)` keeps warm encoder/decoder sessions; `transcribe(audio)` trims
leading/trailing silence, runs the encoder once, then decodes with a key/value cache and
runaway guards: beam search (the hypotheses in one batch per step) or greedy (beam 1);
the loops and rules are shared with the torch model in `dictation.app.decoding`.
Speech longer than the encoder's window (~29 s) is cut at pauses and decoded segment by
segment (`dictation.app.long_transcription`); `previous_text` puts earlier text in the
decoder's prompt (<|startofprev|>).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.decoding import (
    BEAM_CANDIDATES,
    DEFAULT_BEAM,
    PROMPT,
    Bias,
    DecodeScore,
    TextTokenizer,
    beam_decode,
    check_beam,
    greedy_decode,
    load_tokenizer_and_rules,
    rescore_shortlist,
    token_budget,
)

MIN_SPEECH_SECONDS = 0.12
SILENCE_DBFS = -50.0  # frames quieter than this (and far below the peak) count as silence
TRIM_MARGIN_S = 0.2  # keep this much around detected speech (soft word edges)
# Float input louder than this is not speech from a microphone but a wrongly scaled file
# (e.g. PCM values stored as floats): the log-mel front end is not scale-free, so such
# input is scaled down to full scale (and reported) instead of decoded into invented text.
OVER_SCALE = 2.0
START_OF_PREV = 50360  # Whisper's <|startofprev|>: the previous text, before <|startoftranscript|>
MAX_PROMPT_TOKENS = 223  # Whisper's limit: half the text context, less <|startofprev|>
TEXT_CONTEXT = 448  # positions of the decoder (positions.npy)


class VocabularyHook(Protocol):
    """A profile's words in decoding (`dictation.app.vocabulary.DecodingVocabulary`)."""

    def prompt(self) -> str:
        """Text put before the previous text in the decoder's prompt ("" none)."""
        ...

    def decode(self, run: Callable[[Bias | None], list[int]], tokenizer: TextTokenizer) -> tuple[list[int], str]:
        """Tokens and text of the utterance `run(bias)` decodes (with a contextual bias,
        or None), the words' written forms (replacements) applied to the text."""
        ...


class ModelMissingError(RuntimeError):
    """No usable ONNX model directory."""


class ModelDamagedError(ModelMissingError):
    """A model file exists but cannot be loaded (truncated, garbled); `file` names it."""

    def __init__(self, model_dir: Path, file: str, reason: str) -> None:
        super().__init__(f"{model_dir}: {file} cannot be loaded ({reason})")
        self.model_dir, self.file, self.reason = Path(model_dir), file, reason


class InvalidAudioError(ValueError):
    """Audio that cannot be transcribed as it is (NaN or infinite samples)."""


def check_finite(audio: np.ndarray, offset: int = 0, sample_rate: int = SAMPLE_RATE) -> None:
    """InvalidAudioError naming where the first NaN/infinite sample is, if there is one.

    An error, not zeros: a damaged stretch would silently drop words from a transcript
    that looks complete, so the caller reports the input instead.
    """
    bad = ~np.isfinite(audio)
    if bad.any():
        first = (offset + int(np.flatnonzero(bad.reshape(len(audio), -1).any(axis=-1))[0])) / sample_rate
        raise InvalidAudioError(
            f"the audio holds {int(bad.sum())} NaN or infinite samples (the first at "
            f"{first:.2f} s): the recording is damaged"
        )


def over_scale_warning(peak: float) -> str:
    return (
        f"the samples reach {peak:.0f} times full scale (clipped or wrongly scaled input); "
        "transcribed after scaling it down to full scale"
    )


@dataclass
class Transcript:
    text: str
    seconds: float  # decode time (model load excluded)
    audio_seconds: float
    tokens: list[int] = field(default_factory=list)
    encoder_seconds: float = 0.0
    beam: int = 1  # the beam width it was decoded with (1: greedy)
    warnings: list[str] = field(default_factory=list)  # about the input (e.g. over full scale)
    segments: int = 1  # decoded pieces (long speech is cut at pauses)
    # The model's confidence in the text: mean probability of the chosen tokens (see
    # decoding.DecodeScore); None when not measured (e.g. no speech).
    confidence: float | None = None


def to_mono_16k(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """float32 mono at 16 kHz from (n,) or (n, channels) input at any rate."""
    a = np.asarray(audio)
    if a.ndim == 2:
        a = a.mean(axis=1)
    elif a.ndim != 1:
        raise ValueError(f"audio must be 1-D or (samples, channels), got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / np.iinfo(a.dtype).max
    a = a.astype(np.float32, copy=False)
    check_finite(a, sample_rate=sample_rate)
    if sample_rate != SAMPLE_RATE and len(a):
        from dictation.app.audio import resample

        a = resample(a, sample_rate, SAMPLE_RATE)
    return a


def frame_dbfs(audio: np.ndarray, frame: int = 320) -> np.ndarray:
    """Level of each whole `frame` of `audio` in dBFS (float64, so loud input cannot overflow)."""
    n = len(audio) // frame
    power = np.mean(np.square(audio[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    return 10 * np.log10(power + 1e-12)


def speech_bounds(audio: np.ndarray, frame: int = 320) -> tuple[int, int] | None:
    """(start, end) sample indices of the non-silent region, or None if all silence."""
    db = frame_dbfs(audio, frame)
    if len(db) == 0:
        return None
    peak = db.max()
    if not np.isfinite(peak) or peak < SILENCE_DBFS:  # non-finite input: nothing to trim to
        return None
    active = np.flatnonzero(db > max(SILENCE_DBFS, peak - 45.0))
    margin = int(TRIM_MARGIN_S * SAMPLE_RATE)
    start = max(0, active[0] * frame - margin)
    end = min(len(audio), (active[-1] + 1) * frame + margin)
    if end - start < MIN_SPEECH_SECONDS * SAMPLE_RATE:
        return None
    return start, end


class Transcriber:
    """Warm onnxruntime sessions for one exported model directory."""

    def __init__(self, model_dir: Path, threads: int | None = None, beam: int = DEFAULT_BEAM) -> None:
        import onnxruntime as ort

        self.beam = check_beam(beam)

        model_dir = Path(model_dir)
        for name in ("encoder.onnx", "decoder.onnx", "tokenizer.json", "config.json", "model.json"):
            if not (model_dir / name).is_file():
                raise ModelMissingError(f"{model_dir} is not a complete model: {name} is missing")
        self.model_dir = model_dir
        with _loading(model_dir, "model.json"):
            self.info = json.loads((model_dir / "model.json").read_text())
            cfg = self.info["whisper_config"]
            # Audio the encoder takes in one run: its positions (2 mel frames each) less the
            # frames the graph pads on; a little is kept spare.
            frames = 2 * int(cfg["n_audio_ctx"]) - int(self.info.get("pad_frames", 0))
            self.max_audio_seconds = frames * 160 / SAMPLE_RATE - 0.5
        # Format >= 2: numpy embeds the tokens and rescores the int8 projection's shortlist.
        # Memory-mapped, so only the rows used are resident. Format 1 (tokens in, float
        # logits out) is still read: profiles exported by older versions keep working.
        self._format = int(self.info.get("format_version", 1))
        if self._format >= 2:
            for name in ("embedding.npy", "positions.npy"):
                if not (model_dir / name).is_file():
                    raise ModelMissingError(f"{model_dir} is not a complete model: {name} is missing")
                with _loading(model_dir, name):
                    loaded = np.load(model_dir / name, mmap_mode="r" if name == "embedding.npy" else None)
                    if loaded.ndim != 2 or loaded.shape[1] != int(cfg["d_model"]):
                        raise ValueError(f"shape {loaded.shape} instead of (n, {cfg['d_model']})")
                if name == "embedding.npy":
                    self._embedding = loaded
                else:
                    self._positions = loaded
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: an idle dictation app must not burn CPU, and spinning
        # threads fight the desktop's other work (2 threads ran ~2x slower than 1 under load).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Input shapes change at every decoder step and with every utterance's length, so
        # memory plans cached per shape only pile up (10 min of speech: 513 -> 383 MB peak).
        opts.enable_mem_pattern = False
        providers = ["CPUExecutionProvider"]
        with _loading(model_dir, "encoder.onnx"):
            self.encoder = ort.InferenceSession(str(model_dir / "encoder.onnx"), opts, providers=providers)
        with _loading(model_dir, "decoder.onnx"):
            self.decoder = ort.InferenceSession(str(model_dir / "decoder.onnx"), opts, providers=providers)
        with _loading(model_dir, "tokenizer.json or config.json"):
            self.tokenizer, self.rules = load_tokenizer_and_rules(model_dir)
        self._empty = np.zeros((cfg["n_text_layers"], 1, 0, cfg["d_model"]), np.float32)
        # Exports from format 4 on take several hypotheses per decoder run (a symbolic batch
        # axis); older ones are run a hypothesis at a time, with the same result.
        self.batched = isinstance(self.decoder.get_inputs()[0].shape[0], str)
        # A profile's vocabulary, used by every `transcribe` until set to None (a long
        # recording's pieces included); set it between calls, not during one.
        self.vocabulary: VocabularyHook | None = None

    @property
    def model_version(self) -> str:
        return str(self.info.get("model_version", "unknown"))

    def self_check(self) -> None:
        """Run the model once on a short tone (~50 ms): ModelDamagedError if a graph that
        loaded still fails or gives non-finite numbers (weights garbled inside the file)."""
        t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
        tone = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        with _loading(self.model_dir, "encoder.onnx"):
            cross = self.encoder.run(None, {"audio": tone[None]})
            if not all(np.isfinite(c).all() for c in cross):
                raise ValueError("it computes non-finite values")
        with _loading(self.model_dir, "decoder.onnx"):
            logits = self._decode_steps(cross[0], cross[1], beam=1, prefix=[], budget=1, probe=True)
            if not np.isfinite(logits).all():
                raise ValueError("it computes non-finite values")

    def prompt_tokens(self, previous_text: str) -> list[int]:
        """Decoder prefix for `previous_text` (Whisper's <|startofprev|> convention): the
        last tokens of the text that came before, so a segment continues it in style,
        spelling and case. The vocabulary's prompt (if any) goes first. Empty: no prefix."""
        glossary = self.vocabulary.prompt() if self.vocabulary is not None else ""
        head = self.tokenizer.encode(glossary)[: MAX_PROMPT_TOKENS // 2] if glossary.strip() else []
        if not previous_text.strip():
            return [START_OF_PREV, *head] if head else []
        return [START_OF_PREV, *head, *self.tokenizer.encode(previous_text)[-(MAX_PROMPT_TOKENS - len(head)) :]]

    def transcribe(
        self,
        audio: np.ndarray,
        sample_rate: int = SAMPLE_RATE,
        beam: int | None = None,
        previous_text: str = "",
    ) -> Transcript:
        """Text for one utterance; silent or empty audio gives empty text. `beam`: this
        call's beam width (default: the transcriber's; 1 is greedy). `previous_text`: what
        was said just before (the decoder's prompt). Speech longer than the encoder's
        window is cut at pauses and decoded piece by piece. NaN or infinite samples:
        InvalidAudioError; input far over full scale is scaled down and a warning noted."""
        beam = self.beam if beam is None else check_beam(beam)
        t0 = time.perf_counter()
        a = to_mono_16k(audio, sample_rate)
        audio_seconds = len(a) / SAMPLE_RATE
        warnings: list[str] = []
        peak = float(np.max(np.abs(a))) if len(a) else 0.0
        if peak > OVER_SCALE:
            warnings.append(over_scale_warning(peak))
            a = a / np.float32(peak)
        bounds = speech_bounds(a)
        if bounds is None:
            return Transcript("", time.perf_counter() - t0, audio_seconds, beam=beam, warnings=warnings)
        a = np.ascontiguousarray(a[bounds[0] : bounds[1]])
        if len(a) > self.max_audio_seconds * SAMPLE_RATE:
            from dictation.app.long_transcription import transcribe_long

            long = transcribe_long(self, a, beam=beam, previous_text=previous_text)
            long.audio_seconds, long.warnings = audio_seconds, warnings + long.warnings
            return long
        cross_k, cross_v = self.encoder.run(None, {"audio": a[None]})
        t_enc = time.perf_counter() - t0
        prefix = self.prompt_tokens(previous_text)
        seconds = len(a) / SAMPLE_RATE
        budget = token_budget(seconds)
        if prefix:  # the prompt and the text share the decoder's positions
            prefix = prefix[:1] + prefix[1:][-max(0, TEXT_CONTEXT - len(PROMPT) - budget - 1) :]
            budget = min(budget, TEXT_CONTEXT - len(PROMPT) - len(prefix))
        vocabulary = self.vocabulary
        scores: list[tuple[list[int], DecodeScore]] = []  # each decoding run's tokens and score

        def run(bias: Bias | None) -> list[int]:
            score = DecodeScore()
            tokens = self._decode_steps(
                cross_k, cross_v, beam=beam, prefix=prefix, budget=budget, bias=bias, scored=score
            )
            scores.append((tokens, score))
            return tokens

        if vocabulary is None:
            tokens = run(None)
            text = self.tokenizer.decode(tokens)
        else:
            tokens, text = vocabulary.decode(run, self.tokenizer)
        # The run that gave these tokens; a text merged from two runs: the plain (first) one.
        score = next((s for t, s in scores if t == tokens), scores[0][1])
        return Transcript(
            text, time.perf_counter() - t0, audio_seconds, tokens, t_enc, beam, warnings, confidence=score.confidence
        )

    def _decode_steps(
        self,
        cross_k: np.ndarray,
        cross_v: np.ndarray,
        beam: int,
        prefix: list[int],
        budget: int,
        probe: bool = False,
        bias: Bias | None = None,
        scored: DecodeScore | None = None,
    ) -> Any:
        """Decode (greedy or beam) after the cross-attention keys/values; `prefix` goes
        before the start-of-transcript prompt. `probe`: only the first step's logits."""
        cache = [self._empty, self._empty]  # (layers, hypotheses, positions, d)

        def run_batch(rows: list[list[int]]) -> np.ndarray:
            """Feed one token list per hypothesis (all the same length) after the cache;
            grow the cache; return (hypotheses, vocab) logits."""
            if prefix and cache[0].shape[2] == 0:  # the first run: the prompt goes in front
                rows = [prefix + row for row in rows]
            if self._format < 2:
                logits, cache[0], cache[1] = self.decoder.run(
                    None,
                    {
                        "tokens": np.array(rows, np.int64),
                        "cross_k": cross_k,
                        "cross_v": cross_v,
                        "self_k": cache[0],
                        "self_v": cache[1],
                    },
                )
                return logits
            offset = cache[0].shape[2]
            n = len(rows[0])
            x = self._embedding[np.array(rows)].astype(np.float32) + self._positions[offset : offset + n]
            approx, hidden, cache[0], cache[1] = self.decoder.run(
                None, {"x": x, "cross_k": cross_k, "cross_v": cross_v, "self_k": cache[0], "self_v": cache[1]}
            )
            # A beam ranks this many candidates per hypothesis: each is rescored exactly.
            extra = beam + BEAM_CANDIDATES if beam > 1 else 0
            return np.stack(
                [rescore_shortlist(approx[j], hidden[j], self._embedding, at_least=extra) for j in range(len(rows))]
            )

        def run(rows: list[list[int]]) -> np.ndarray:
            """`run_batch`, or one hypothesis at a time for exports without a batch axis.
            (Not recursive: a closure that calls itself is a reference cycle, which kept
            each utterance's ~13 MB of cross-attention keys/values until a full GC.)"""
            if self.batched or len(rows) == 1:
                return run_batch(rows)
            caches, outs = cache[:], []
            parts_k, parts_v = [], []
            for j, row in enumerate(rows):
                cache[0], cache[1] = caches[0][:, j : j + 1], caches[1][:, j : j + 1]
                outs.append(run_batch([row])[0])
                parts_k.append(cache[0])
                parts_v.append(cache[1])
            cache[0], cache[1] = np.concatenate(parts_k, axis=1), np.concatenate(parts_v, axis=1)
            return np.stack(outs)

        def step(tokens: list[int]) -> np.ndarray:
            return run([tokens])[0]

        def beam_step(parents: list[int], rows: list[list[int]]) -> np.ndarray:
            if cache[0].shape[1] != len(parents) or parents != list(range(len(parents))):
                cache[0], cache[1] = cache[0][:, parents], cache[1][:, parents]
            return run(rows)

        if probe:
            return step(list(PROMPT))
        if beam == 1:
            return greedy_decode(step, self.rules, audio_seconds=0.0, max_tokens=budget, bias=bias, scored=scored)
        return beam_decode(
            beam_step, self.rules, audio_seconds=0.0, beam=beam, max_tokens=budget, bias=bias, scored=scored
        )


@contextlib.contextmanager
def _loading(model_dir: Path, file: str) -> Iterator[None]:
    """Any failure while loading `file` (onnxruntime's InvalidProtobuf/Fail, a tokenizer or
    JSON error, a short .npy) becomes a ModelDamagedError naming the file."""
    try:
        yield
    except ModelMissingError:
        raise
    except Exception as exc:  # onnxruntime and tokenizers raise plain Exception subclasses
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ModelDamagedError(model_dir, file, reason) from exc
