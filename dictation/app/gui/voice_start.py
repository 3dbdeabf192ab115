"""Before any enrollment: the voice-space start (issue 28), queued from the app.

A profile with no adapted model and no enrollment takes is served by the base model. Once
its first dictations hold at least `MIN_SPEECH_SECONDS` of speech, and the base export has
a voice graph (`voice.onnx`: the bundle has a voice space), the speech is handed to a
`PlacementJob` (`dictation.adapt.placement`): the model with the voice bank's start for
this voice written in, zero steps, installed only while the profile still has no adapted
model. It runs like a background adaptation: a spawned worker at idle priority
(`lower_priority`), so dictation never waits for it.

The audio is the dictations' own, as the dictation controller holds it (`last_audio`)
after each one: the speech part of each (silence trimmed, at most `MAX_CLIP_SECONDS`) is
held in memory until enough is gathered, then passed to the worker and dropped here.
Nothing is written to disk for it and nothing the user keeps is deleted.

Once per profile: the profile's settings record that the start was queued
(`PLACED_SETTING`), so going back to the base model does not bring it back, and a run
that found nothing to place is not repeated. The profile setting `VOICE_START_SETTING`
(missing: on) turns it off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.gui.adapt_runner import AdaptRunner, JobLike
from dictation.app.profiles import ProfileError
from dictation.app.profiles.files import now
from dictation.app.runtime import speech_bounds, to_mono_16k

log = logging.getLogger(__name__)

VOICE_START_SETTING = "voice_space_start"  # profile setting; missing means on
PLACED_SETTING = "voice_space_start_queued"  # when the start was queued (once per profile)
MIN_SPEECH_SECONDS = 4.0
MAX_CLIP_SECONDS = 20.0  # as the voice embedder: a voice is placed well from far less


def speech_of(audio: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """The speech part of a dictation (16 kHz mono, at most MAX_CLIP_SECONDS), or None."""
    a = to_mono_16k(audio, sample_rate)
    bounds = speech_bounds(a)
    if bounds is None:
        return None
    return np.array(a[bounds[0] : bounds[1]][: int(MAX_CLIP_SECONDS * SAMPLE_RATE)], dtype=np.float32)


def default_placement_job(profile_name: str, audios: list[np.ndarray]) -> JobLike:
    from dictation.app.placement_job import PlacementJob

    return PlacementJob(profile_name, audios)


class VoiceStart(QObject):
    """Gathers a new profile's first dictations and queues its voice-space start.

    Signals: started(str profile name), finished(dict done message), failed(str).
    """

    started = Signal(str)
    finished = Signal(dict)
    failed = Signal(str)

    def __init__(
        self,
        controller: Any,
        session: Any,
        adaptation: Any,
        make_job: Callable[[str, list[np.ndarray]], JobLike] = default_placement_job,
        lower_priority: Callable[[int], bool] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller, self.session, self.adaptation = controller, session, adaptation
        self.make_job, self.lower_priority = make_job, lower_priority
        self.runner: AdaptRunner | None = None
        self._clips: list[np.ndarray] = []
        self._clips_for = ""  # the profile the clips are of
        self._tried: set[str] = set()  # profiles queued in this launch
        controller.dictated.connect(lambda *_: self.dictated())

    def is_running(self) -> bool:
        return self.runner is not None and self.runner.is_running()

    def why_not(self) -> str:
        """Why the open profile's dictations are not gathered for a start ("" when they are)."""
        profile = self.session.profile
        if profile is None:
            return "no profile is open"
        settings = self.session.settings
        if not settings.get(VOICE_START_SETTING, True):
            return "the voice-space start is off"
        if settings.get(PLACED_SETTING) or profile.name in self._tried:
            return "the voice-space start was queued already"
        if self.is_running() or self.adaptation.is_running():
            return "a model is being made"
        try:
            if profile.model_dir() is not None or profile.takes():
                return "the profile has enrollment takes or an adapted model"
        except (ProfileError, OSError) as exc:
            return f"the profile cannot be read ({exc})"
        return ""

    def dictated(self) -> None:
        """After a dictation: gather its speech; with enough, check for the voice graph on
        the transcription worker (the base model's folder is found there) and queue."""
        audio = self.controller.last_audio
        if audio is None or self.why_not():
            self._clips = []  # gathered for nothing now: not kept
            return
        profile = self.session.profile
        if profile.name != self._clips_for:
            self._clips, self._clips_for = [], profile.name
        rate = int(getattr(getattr(self.controller, "recorder", None), "sample_rate", SAMPLE_RATE))
        clip = speech_of(audio, rate)
        if clip is None:
            return
        self._clips.append(clip)
        if sum(c.size for c in self._clips) < MIN_SPEECH_SECONDS * SAMPLE_RATE:
            return
        clips, self._clips = self._clips, []
        self.adaptation.transcription.submit(
            self._has_voice_graph,
            lambda has: self._queue(profile, clips) if has else None,
            lambda message: log.warning("no voice-space start: %s", message),
        )

    def _has_voice_graph(self) -> bool:
        model_dir: Path = self.adaptation.services.base_model_dir()
        return (Path(model_dir) / "voice.onnx").is_file()

    def _queue(self, profile: Any, clips: list[np.ndarray]) -> None:
        if self.session.profile is not profile or self.why_not():
            return
        try:
            job = self.make_job(profile.name, clips)
        except Exception as exc:  # e.g. an install without torch: dictation goes on with the base model
            log.info("no voice-space start: %s", exc)
            self._tried.add(profile.name)
            return
        self._tried.add(profile.name)
        self.session.update_settings({PLACED_SETTING: now()})
        runner = AdaptRunner(job, self)
        runner.finished.connect(lambda message: self._finished(profile, message))
        runner.failed.connect(lambda message: self._failed(profile, message))
        runner.cancelled.connect(lambda: self._failed(profile, "cancelled"))
        self.runner = runner
        runner.start()
        pid = getattr(job, "pid", None)
        if isinstance(pid, int) and self.lower_priority is not None:
            self.lower_priority(pid)
        if runner.is_running():
            log.info("queued the voice-space start of profile %r (%d dictations)", profile.name, len(clips))
            self.started.emit(profile.name)

    def _finished(self, profile: Any, message: dict) -> None:
        if message.get("installed") and self.session.profile is profile:
            # Dictate with it now (`model_loaded` follows, and the window says which model).
            transcription = self.adaptation.transcription
            model_dir = profile.model_dir()
            if model_dir is not None:
                transcription.forget(model_dir)
            transcription.set_model_dir(model_dir)
            transcription.preload()
        self.finished.emit(dict(message))

    def _failed(self, profile: Any, message: str) -> None:
        # Not retried (the profile's record stays): a voice far from the bank, or a model
        # without one, would fail again; enrolling adapts as usual.
        log.warning("the voice-space start of profile %r did not run: %s", profile.name, message)
        self.failed.emit(message)
