"""Enrollment: the prompt set and the automatic check of each recorded take.

No Qt and no torch here: the wizard calls `check_take` on a worker thread, and the check
is plain numpy plus (optionally) the onnxruntime `Transcriber` for the misread test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dictation.app import audio as audio_mod
from dictation.app import resources
from dictation.app.text import cer, normalize_for_wer

_PROMPTS_RELATIVE = Path("assets") / "prompts" / "prompts.json"


def prompts_file() -> Path:
    """Where the committed prompt set lives: a checkout's `assets/`, or a frozen app's."""
    # not found: load_prompts names the checkout path
    return resources.find(_PROMPTS_RELATIVE) or resources.checkout_path(_PROMPTS_RELATIVE)


# Thresholds. Silence and clipping use `dictation.app.audio.analyze`'s own definitions (its
# loudest 30 ms frame under -50 dBFS; over 0.1 % of samples at full scale). Speech read at
# a normal distance peaks around -20..-8 dBFS per 30 ms frame; under -35 is too quiet to
# adapt on (the noise floor dominates).
QUIET_LOUDEST_DBFS = -35.0
MIN_SECONDS = 0.8
# Even a fast reader needs about 1/40 s per character of the prompt.
MIN_SECONDS_PER_CHAR = 0.025
MAX_CER = 0.5  # above this the base model heard a different sentence


class EnrollmentError(Exception):
    """The prompt file is missing or malformed."""


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    group: str


def load_prompts(path: Path | None = None) -> list[Prompt]:
    """The enrollment prompts in reading order (EnrollmentError if the file is bad)."""
    path = Path(path) if path is not None else prompts_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EnrollmentError(f"prompt file not found: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnrollmentError(f"prompt file {path} is not readable JSON: {exc}") from exc
    items = data.get("prompts") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise EnrollmentError(f"prompt file {path} has no 'prompts' list")
    prompts: list[Prompt] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise EnrollmentError(f"prompt #{index} in {path} is not an object")
        pid, text, group = item.get("id"), item.get("text"), item.get("group", "")
        if not isinstance(pid, str) or not pid or not isinstance(text, str) or not text.strip():
            raise EnrollmentError(f"prompt #{index} in {path} needs a non-empty 'id' and 'text'")
        if pid in seen:
            raise EnrollmentError(f"duplicate prompt id {pid!r} in {path}")
        seen.add(pid)
        prompts.append(Prompt(pid, text.strip(), str(group)))
    return prompts


class _Transcribes(Protocol):
    def transcribe(self, audio: np.ndarray, sample_rate: int = 16000) -> Any: ...


@dataclass
class TakeCheck:
    """Result of checking one take. `problem` is None for a good take."""

    problem: str | None  # "silent", "too_short", "too_quiet", "clipped", "misread"
    reason: str  # plain language, shown to the user
    quality: dict = field(default_factory=dict)  # saved with the take

    @property
    def ok(self) -> bool:
        return self.problem is None


def min_seconds(prompt_text: str) -> float:
    """Shortest plausible reading time for a prompt."""
    return max(MIN_SECONDS, MIN_SECONDS_PER_CHAR * len(prompt_text))


def check_take(
    audio: np.ndarray,
    prompt_text: str,
    sample_rate: int = 16000,
    transcriber: _Transcribes | None = None,
    max_cer: float = MAX_CER,
) -> TakeCheck:
    """Check a take: silence, length, level, clipping, then (with a transcriber) misreading.

    The cheap signal checks run first so a bad take is rejected without decoding it.
    """
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    measured = audio_mod.analyze(samples, sample_rate)
    quality: dict[str, Any] = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in measured.to_dict().items()}
    if samples.size == 0 or measured.is_silent:
        return TakeCheck(
            "silent",
            "Nothing was heard. Check that the right microphone is selected and not muted, then try again.",
            quality,
        )
    if measured.duration < min_seconds(prompt_text):
        return TakeCheck(
            "too_short",
            "The recording is too short for this sentence. Hold "
            "the key for the whole sentence and release it after the last word.",
            quality,
        )
    if measured.loudest_dbfs < QUIET_LOUDEST_DBFS:
        return TakeCheck(
            "too_quiet", "Your voice was too quiet. Speak a little louder or move closer to the microphone.", quality
        )
    if measured.is_clipped:
        return TakeCheck(
            "clipped",
            "The recording was too loud and distorted. Speak a little "
            "softer, move back from the microphone, or lower its input volume.",
            quality,
        )
    if transcriber is not None:
        heard = str(transcriber.transcribe(samples, sample_rate).text)
        error = cer([prompt_text], [heard]) if normalize_for_wer(prompt_text) else 0.0
        quality["transcript"] = heard
        quality["cer"] = round(float(error), 3)
        if error > max_cer:
            shown = heard.strip() or "(nothing recognisable)"
            return TakeCheck(
                "misread",
                f"This did not sound like the sentence on screen (heard: "
                f"\u201c{shown}\u201d). Please read it exactly as written.",
                quality,
            )
    return TakeCheck(None, "Good take.", quality)
