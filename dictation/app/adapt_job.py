"""AdaptationJob: start, watch and cancel the adaptation worker process.

No torch here (the GUI imports this); the spawned worker imports it. Events from
``poll()``::

    {"type": "progress", "step", "total", "loss", "eta_seconds"}   # eta None at step 0
    {"type": "status", "message"}                                   # phase changes, fallbacks
    {"type": "done", "installed", "before_wer", "after_wer", "previous_wer", "reason", "device",
     "shrink", "before_loss", "after_loss", "in_use", "candidate"}
        # before/after: cross-validated WER on the profile's recordings (worker docstring);
        # previous_wer is None since that check (kept for readers of older events).
        # installed False: the model in use (`in_use`, e.g. "the base model") stays and the
        # new one is kept aside in `candidate` (the profile's model.candidate folder);
        # `reason` says so with the numbers. shrink: the installed update's strength (1 full,
        # 0.5 half; 0 when nothing was installed); before/after_loss: the check's token loss.
    {"type": "error", "message"}       # "cancelled" after cancel(); crashes are detected here

Exactly one ``done`` or ``error`` event ends a job.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import queue
import sys
import time
from typing import Any

FROZEN_MESSAGE = (
    "adaptation needs the full install (with torch), which this app leaves out: "
    "pip install . in the source folder (or ./run there). This app dictates with "
    "the base model and with profiles adapted by the full install."
)


WORKER_MODULE = "dictation.adapt.worker"


def _run_worker(*args: Any) -> None:
    """Entry point of the spawned process: the adapting layer (and torch) load only there."""
    importlib.import_module(WORKER_MODULE).run(*args)


class AdaptationUnavailable(RuntimeError):
    """Adaptation cannot run in this installation."""


def unavailable_reason() -> str | None:
    """Why adaptation cannot run here (the one-folder app ships without torch), or None."""
    return FROZEN_MESSAGE if getattr(sys, "frozen", False) else None


class AdaptationJob:
    """One adaptation run of one profile, in its own spawned process."""

    def __init__(self, profile_name: str, steps: int | None = None, device: str = "auto") -> None:
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda")
        if steps is not None and steps < 1:
            raise ValueError("steps must be at least 1")
        reason = unavailable_reason()
        if reason:
            raise AdaptationUnavailable(reason)
        self.profile_name = profile_name
        self.steps = steps
        self.device = device
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._events: Any = None
        self._cancel: Any = None
        self._finished = False
        self.result: dict | None = None  # the final done/error event

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("an AdaptationJob can only be started once")
        self._events = self._context.Queue()
        self._cancel = self._context.Event()
        self._process = self._context.Process(
            target=_run_worker,
            # The worker stops, installing nothing, once this process is gone (killed or
            # crashed included: dictation.adapt.worker_process).
            args=(self.profile_name, self.steps, self.device, self._events, self._cancel, os.getpid()),
            name=f"dictation-adapt-{self.profile_name}",
            daemon=True,  # ended by a normal exit of the app; a killed worker leaves the profile intact
        )
        self._process.start()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def cancel(self) -> None:
        """Ask the worker to stop at its next check; an ``error: cancelled`` event follows."""
        if self._cancel is not None:
            self._cancel.set()

    def kill(self) -> None:
        """Stop the worker at once (e.g. on quit). Safe: the profile is left as it was."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def finished(self) -> bool:
        """True once a done or error event has been returned by ``poll``."""
        return self._finished

    def poll(self) -> list[dict]:
        """Events that arrived since the last call (never blocks for long)."""
        if self._process is None or self._finished:
            return []
        events = self._drain(wait=0.0)
        if not self._finished and not self._process.is_alive():
            self._process.join()
            # Events the worker put just before exiting may still be in the pipe.
            events += self._drain(wait=0.5)
            if not self._finished:
                code = self._process.exitcode
                if code != 0:
                    message = f"adaptation process crashed (exit code {code}); your previous model is unchanged"
                else:
                    message = "adaptation process ended without a result; your previous model is unchanged"
                events.append(self._finish({"type": "error", "message": message}))
        return events

    def wait(self, timeout: float | None = None, interval: float = 0.1) -> list[dict]:
        """Poll until the job ends (or ``timeout`` seconds pass); return all events seen."""
        deadline = None if timeout is None else time.monotonic() + timeout
        events: list[dict] = []
        while not self._finished:
            events += self.poll()
            if deadline is not None and time.monotonic() > deadline:
                break
            if not self._finished:
                time.sleep(interval)
        return events

    def _drain(self, wait: float) -> list[dict]:
        events = []
        while not self._finished:
            try:
                event = self._events.get(timeout=wait) if wait else self._events.get_nowait()
            except queue.Empty:
                break
            if event.get("type") in ("done", "error"):
                event = self._finish(event)
            events.append(event)
        return events

    def _finish(self, event: dict) -> dict:
        self._finished = True
        self.result = event
        return event
