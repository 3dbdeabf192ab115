"""PlacementJob: the voice-space start of a profile (`dictation.adapt.placement`) in a
spawned worker process, watched like an `AdaptationJob` (same events, poll, cancel, kill).

No torch here. The dictations' audio goes to the worker through the process's start-up
pipe (pickled with its arguments): it is never written to disk for this.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from dictation.app.adapt_job import AdaptationJob

WORKER_MODULE = "dictation.adapt.placement"


def _run_placement(*args: Any) -> None:
    """Entry point of the spawned process: the adapting layer (and torch) load only there."""
    importlib.import_module(WORKER_MODULE).run(*args)


class PlacementJob(AdaptationJob):
    """One placement of one profile's voice from `audios` (16 kHz mono speech clips)."""

    def __init__(self, profile_name: str, audios: Sequence[np.ndarray]) -> None:
        super().__init__(profile_name, steps=None, device="cpu")
        self.audios = [np.ascontiguousarray(a, np.float32) for a in audios]

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("a PlacementJob can only be started once")
        self._events = self._context.Queue()
        self._cancel = self._context.Event()
        self._process = self._context.Process(
            target=_run_placement,
            # Like the adaptation worker, it installs nothing once this process is gone.
            args=(self.profile_name, self.audios, self._events, self._cancel, os.getpid()),
            name=f"dictation-voice-start-{self.profile_name}",
            daemon=True,
        )
        self._process.start()
        self.audios = []  # the worker has its copy; this process keeps none
