"""One press and one release per physical hold, whatever auto-repeat does.

X auto-repeat sends, while a key is held, release+press pairs with the same server
timestamp (or, with XKB's detectable auto-repeat, repeated presses only). A release is
therefore held back for `window_ms`: a press of the same key arriving within that window
makes it a repeat, and both are dropped; otherwise the release is real.
"""

from __future__ import annotations

PRESS, RELEASE = "press", "release"
DEFAULT_WINDOW_MS = 40


class RepeatFilter:
    """Feed raw events with `press`/`release`; emit real ones; call `flush(now)` when
    `deadline` has passed (a held-back release that no press followed)."""

    def __init__(self, window_ms: float = DEFAULT_WINDOW_MS) -> None:
        self.window_ms = float(window_ms)
        self.down = False
        self._release_time_ms: float | None = None  # server time of the held-back release
        self.deadline: float | None = None  # local clock (s) when that release becomes real

    def press(self, time_ms: float) -> list[str]:
        """A raw press at server time `time_ms`; returns the real events it makes."""
        events: list[str] = []
        if self._release_time_ms is not None:
            is_repeat = 0 <= time_ms - self._release_time_ms <= self.window_ms
            self._release_time_ms = self.deadline = None
            if is_repeat:
                return events
            self.down = False
            events.append(RELEASE)  # the held-back release was real after all
        if not self.down:  # a press while down is a detectable auto-repeat
            self.down = True
            events.append(PRESS)
        return events

    def release(self, time_ms: float, now: float) -> list[str]:
        """A raw release at server time `time_ms`, seen at local time `now` (seconds)."""
        if self.down and self._release_time_ms is None:
            self._release_time_ms = time_ms
            self.deadline = now + self.window_ms / 1000.0
        return []

    def flush(self, now: float) -> list[str]:
        """The held-back release, once its window has passed with no press."""
        if self.deadline is not None and now >= self.deadline:
            self._release_time_ms = self.deadline = None
            self.down = False
            return [RELEASE]
        return []
