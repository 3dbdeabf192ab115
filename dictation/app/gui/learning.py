"""Learning from use: dictations become adaptation material, and adaptation reruns when idle.

With the user's consent (the profile setting ``learn_from_use``, on by default, explained
and switched on the "What I learned" page):

- `LearningFromUse` watches each dictation. One that is delivered (copied: by the
  automatic copy, the Copy button or any copy of its words; typed or pasted into an
  application) and not corrected, either before the next dictation starts or within
  `ACCEPT_AFTER_S`, is *accepted*: when the model was sure of it (confidence at least
  `CONFIDENCE_THRESHOLD`) its audio and recognised text are kept in the profile
  (`dictation.app.profiles.learned`). A corrected one ("Mark as correct") is kept by the
  controller with the corrections, as before; it counts as new material here.
- `IdleAdaptation` starts the adaptation (`AdaptationController`, the one the Adapt page
  uses; it adapts on the takes, corrections and accepted dictations, with more steps
  for more material and the meta-learned rates as the start, and its check decides
  what is installed) when at least `MIN_NEW_ITEMS` new items gathered since the last
  run, nobody dictated for `IDLE_SECONDS`, no take is recording and the computer is not
  busy. Its worker process is put at idle priority (`lower_priority`), so dictation
  never waits for it. Every run's result is recorded for the accuracy chart.

The confidence threshold, measured on the real recordings of the meta-validation speakers
(332 FOTAQ utterances, 4 speakers; the base model, beam 4; `python
benchmarks/learning_confidence.py --per-speaker 1000`): 20.0 % WER over all; the 32 % at
0.85 or more have 5.6 % WER and 80 % of them no error at all (0.75: 61 %, 8.9 % WER).
The user's acceptance screens the rest: an accepted dictation was read and kept as it is.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal
from PySide6.QtGui import QGuiApplication

from dictation.app.gui.voice_start import VoiceStart
from dictation.app.profiles import ProfileError
from dictation.app.profiles.files import now
from dictation.app.profiles.learned import run_started

log = logging.getLogger(__name__)

LEARN_SETTING = "learn_from_use"  # profile setting; missing means on
CONFIDENCE_THRESHOLD = 0.85
ACCEPT_AFTER_S = 60.0  # a delivered dictation not corrected for this long is accepted
MIN_NEW_ITEMS = 20  # new items that make a background adaptation worth its minutes
IDLE_SECONDS = 300.0  # no dictation for this long before adapting in the background
CHECK_INTERVAL_MS = 30_000
MIN_ENROLLMENT_TAKES = 3  # the adaptation worker's MIN_TAKES (dictation.adapt.worker)


def learning_enabled(settings: dict) -> bool:
    """The user's consent (on unless switched off)."""
    return bool(settings.get(LEARN_SETTING, True))


def machine_busy() -> bool:
    """True while the last minute's load average is half the cores or more."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): judge by the user alone
        return False
    return load >= max(1.0, (os.cpu_count() or 1) / 2)


def lower_priority(pid: int) -> bool:
    """Put every thread of process `pid` at the lowest priority: nice 19, and Linux's
    idle scheduling class (it runs only on CPU time nothing else wants). Threads the
    process starts later inherit it. False when neither could be set."""
    task_dir = Path(f"/proc/{pid}/task")
    try:
        threads = [int(p.name) for p in task_dir.iterdir()] if task_dir.is_dir() else [pid]
    except OSError:
        threads = [pid]
    lowered = False
    for tid in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, 19)
            lowered = True
        except (AttributeError, OSError):
            pass
        try:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            lowered = True
        except (AttributeError, OSError):
            pass
    return lowered


@dataclass
class _Candidate:
    """The last dictation, until it is accepted or corrected."""

    profile: Any
    audio: np.ndarray
    hypothesis: str
    text: str
    confidence: float | None
    at: float
    delivered: str = ""  # "copied" or "typed" once it was


class LearningFromUse(QObject):
    """Keeps accepted dictations as adaptation material (see the module docstring).

    Signals: stored(LearnedItem), changed(): the material changed (stored or corrected).
    """

    stored = Signal(object)
    changed = Signal()

    def __init__(
        self,
        controller: Any,
        session: Any,
        clock: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.session = session
        self.clock = clock
        self.candidate: _Candidate | None = None
        controller.dictated.connect(self._dictated)
        controller.listening_changed.connect(self._listening_changed)
        controller.correction_saved.connect(self._corrected)
        session.opened.connect(lambda _profile: self.commit())
        QGuiApplication.clipboard().dataChanged.connect(self._clipboard_changed)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.commit)

    def watch_delivery(self, delivered: Any) -> None:
        """Count text typed or pasted into an application (a `delivered(DeliveryResult)`
        signal, `AnywhereDictation.delivered`) as delivered."""
        delivered.connect(self._delivered)

    def enabled(self) -> bool:
        return self.session.profile is not None and learning_enabled(self.session.settings)

    def set_enabled(self, on: bool) -> None:
        """The user's choice, saved in the open profile's settings."""
        self.session.update_settings({LEARN_SETTING: bool(on)})
        if not on:
            self.candidate = None

    # -- the dictation's life --------------------------------------------------------

    def _dictated(self, text: str, hypothesis: str) -> None:
        self.commit()  # the one before, if it still waits
        audio = self.controller.last_audio
        if not self.enabled() or audio is None or not hypothesis.strip():
            return
        self.candidate = _Candidate(
            self.session.profile, audio, hypothesis, text, self.controller.last_confidence, self.clock()
        )
        # The controller copies the text after this signal when its setting asks; the
        # clipboard's dataChanged then marks it copied.

    def _clipboard_changed(self) -> None:
        candidate = self.candidate
        if candidate is not None and candidate.text.strip() in QGuiApplication.clipboard().text():
            candidate.delivered = candidate.delivered or "copied"

    def _delivered(self, result: Any) -> None:
        candidate = self.candidate
        if candidate is None or getattr(result, "how", "lost") == "lost":
            return
        if candidate.text.strip() in str(getattr(result, "text", "")):
            candidate.delivered = "typed" if result.how in ("typed", "pasted") else "copied"

    def _corrected(self) -> None:
        """Corrected (or marked correct): the controller kept it with the corrections."""
        self.candidate = None
        self.changed.emit()

    def _listening_changed(self, listening: bool) -> None:
        if listening:
            self.commit()

    def tick(self) -> None:
        """Accept the waiting dictation once it was delivered and left alone long enough."""
        candidate = self.candidate
        if candidate is not None and self.clock() - candidate.at >= ACCEPT_AFTER_S:
            self.commit()

    def commit(self) -> None:
        """The waiting dictation is over: keep it if it was accepted (delivered, not
        corrected) and the model was sure of it."""
        candidate, self.candidate = self.candidate, None
        if candidate is None or not candidate.delivered:
            return
        if candidate.confidence is None or candidate.confidence < CONFIDENCE_THRESHOLD:
            return
        profile = candidate.profile
        if not learning_enabled(profile.settings()):  # switched off meanwhile (another window)
            return
        try:
            item = profile.add_learned(
                candidate.audio, candidate.hypothesis, "accepted", candidate.confidence, candidate.hypothesis
            )
        except (ProfileError, OSError) as exc:
            log.warning("could not keep a dictation for learning: %s", exc)
            return
        self.stored.emit(item)
        self.changed.emit()


class IdleAdaptation(QObject):
    """Starts adaptation in the background when idle (see the module docstring) and
    records every run (background or started on the Adapt page) for the chart.

    Signals: run_recorded(dict run).
    """

    run_recorded = Signal(dict)

    def __init__(
        self,
        adaptation: Any,
        controller: Any,
        session: Any,
        clock: Callable[[], float] = time.monotonic,
        busy: Callable[[], bool] = machine_busy,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.adaptation, self.controller, self.session = adaptation, controller, session
        self.clock, self.busy = clock, busy
        self.min_new_items, self.idle_seconds = MIN_NEW_ITEMS, IDLE_SECONDS
        self.last_activity = clock()  # the app's start counts: the user may be about to dictate
        self.background = False  # the running adaptation was started here
        self._run: dict | None = None  # the record of the run going on
        self._run_profile: Any = None
        controller.listening_changed.connect(lambda _: self._activity())
        controller.dictated.connect(lambda *_: self._activity())
        adaptation.started.connect(self._started)
        adaptation.finished.connect(self._finished)
        adaptation.failed.connect(lambda message: self._ended({"status": "failed", "reason": str(message)}))
        adaptation.cancelled.connect(lambda: self._ended({"status": "cancelled"}))

    def _activity(self) -> None:
        self.last_activity = self.clock()

    def why_not(self) -> str:
        """Why no background adaptation starts now ("" when it would)."""
        profile = self.session.profile
        if profile is None:
            return "no profile is open"
        if not learning_enabled(self.session.settings):
            return "learning from use is off"
        if self.adaptation.is_running():
            return "an adaptation is running"
        if self.controller.is_listening():
            return "a dictation is being recorded"
        idle = self.clock() - self.last_activity
        if idle < self.idle_seconds:
            return f"waiting for {self.idle_seconds - idle:.0f} s without dictation"
        try:
            takes = len(profile.takes())
            new = profile.learned_material.new_since(profile.learned_material.last_run_started())
        except (ProfileError, OSError) as exc:
            return f"the profile cannot be read ({exc})"
        if takes < MIN_ENROLLMENT_TAKES:
            return f"adaptation needs {MIN_ENROLLMENT_TAKES} recorded sentences first"
        if new < self.min_new_items:
            return f"{new} of {self.min_new_items} new items gathered"
        if self.busy():
            return "the computer is busy"
        return ""

    def check(self) -> bool:
        """Start a background adaptation if now is the time; True when one started."""
        if self.why_not():
            return False
        self.background = True
        self.adaptation.start()  # `_started` records it; a failure comes as `failed`
        if not self.adaptation.is_running():
            self.background = False
            return False
        pid = getattr(getattr(self.adaptation.runner, "job", None), "pid", None)
        if isinstance(pid, int):
            lower_priority(pid)
        return True

    # -- run records -----------------------------------------------------------------

    def _started(self) -> None:
        profile = self.session.profile
        if profile is None:
            return
        material = profile.learned_material
        try:
            run = {**run_started(), "kind": "background" if self.background else "manual"}
            run["items"] = len(material.items())
            run["new_items"] = material.new_since(material.last_run_started())
            material.record_run(run)
        except (ProfileError, OSError) as exc:
            log.warning("could not record an adaptation run: %s", exc)
            return
        self._run, self._run_profile = run, profile

    def _finished(self, message: dict) -> None:
        outcome: dict = {"status": "installed" if message.get("installed") else "kept"}
        for key in ("before_wer", "after_wer", "reason"):
            if message.get(key) is not None:
                outcome[key] = message[key]
        self._ended(outcome)

    def _ended(self, outcome: dict) -> None:
        self.background = False
        run, profile, self._run, self._run_profile = self._run, self._run_profile, None, None
        if run is None or profile is None:
            return
        run = {**run, **outcome, "ended": now()}
        try:
            profile.learned_material.record_run(run)
        except (ProfileError, OSError) as exc:
            log.warning("could not record an adaptation run: %s", exc)
            return
        self.run_recorded.emit(run)


class Learning(QObject):
    """Both parts, the voice-space start before enrollment (`VoiceStart`), and the timer
    that drives them (`tick`)."""

    def __init__(
        self,
        controller: Any,
        session: Any,
        adaptation: Any,
        delivered: Any = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.hooks = LearningFromUse(controller, session, parent=self)
        self.scheduler = IdleAdaptation(adaptation, controller, session, parent=self)
        # Before any enrollment: the voice-space start from the first dictations (issue 28).
        self.voice_start = VoiceStart(controller, session, adaptation, lower_priority=lower_priority, parent=self)
        if delivered is not None:
            self.hooks.watch_delivery(delivered)
        self.timer = QTimer(self)
        self.timer.setInterval(CHECK_INTERVAL_MS)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def tick(self) -> None:
        self.hooks.tick()
        self.scheduler.check()
