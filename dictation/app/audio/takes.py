"""The capture state machine: an always-on pre-roll ring buffer, the running take, and
whether the device was lost.

Blocks arrive on PortAudio's thread (`add_block`, `mark_lost`); everything else runs on
the caller's. One condition guards all of it and wakes waiters on every block and on a
loss. Sizes here are in samples at the device's own rate; `MicrophoneStream` resamples.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

from dictation.app.audio.errors import AudioDeviceError


class TakeBuffer:
    """Keeps the last `pre_roll` samples always, and everything since `begin()` up to
    `max_take` samples (the take), so a take started late still holds the first word."""

    def __init__(self, pre_roll: int = 0, max_take: int = 0) -> None:
        self._cond = threading.Condition()
        self._ring: deque[np.ndarray] = deque()
        self._ring_len = 0
        self._ring_cap = pre_roll
        self._take: list[np.ndarray] | None = None
        self._take_len = 0
        self._take_pre_roll = 0
        self._take_cap = max_take
        self._truncated = False
        self._frames_seen = 0
        self._last_block_at = 0.0
        self._lost: str | None = None
        self.overflows = 0

    # -- PortAudio's thread: append, never block for long

    def add_block(self, block: np.ndarray, frames: int, overflowed: bool = False) -> None:
        """Append one mono block to the ring and, while one runs, to the take."""
        with self._cond:
            if overflowed:
                self.overflows += 1
            self._frames_seen += frames
            self._last_block_at = time.monotonic()
            if self._take is not None:
                if self._take_len < self._take_cap:
                    self._take.append(block)
                    self._take_len += block.size
                else:
                    self._truncated = True
            if self._ring_cap:
                self._ring.append(block)
                self._ring_len += block.size
                while self._ring and self._ring_len - self._ring[0].size >= self._ring_cap:
                    self._ring_len -= self._ring.popleft().size
            self._cond.notify_all()

    def mark_lost(self, reason: str) -> None:
        """The stream ended without being closed: every later check reports `reason`."""
        with self._cond:
            self._lost = reason
            self._cond.notify_all()

    # -- the caller's thread

    def wait_for_first_block(self, timeout: float) -> str | None:
        """Wait until a block has arrived; None once one has, else why none came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._frames_seen == 0 and self._lost is None:
                if not self._cond.wait(timeout=max(0.0, deadline - time.monotonic())):
                    break
            if self._frames_seen:
                return None
            return self._lost or f"no audio arrived within {timeout:g} s"

    def end_if_lost(self, stall_timeout: float | None) -> tuple[str, list[np.ndarray]] | None:
        """If the device was lost, or (with `stall_timeout`) sent nothing for longer than
        that after its first block, end the take and return why and its blocks."""
        with self._cond:
            reason = self._lost
            if reason is None and stall_timeout is not None and self._frames_seen:
                silent_for = time.monotonic() - self._last_block_at
                if silent_for > stall_timeout:
                    reason = f"no audio from the device for {silent_for:.1f} s"
            if reason is None:
                return None
            blocks, self._take = self._take or [], None
        return reason, blocks

    def begin(self) -> None:
        """Start a take with the pre-roll already in the ring."""
        with self._cond:
            ring = np.concatenate(list(self._ring)) if self._ring else np.zeros(0, np.float32)
            pre = ring[-self._ring_cap :] if self._ring_cap else ring[:0]
            self._take = [pre]
            self._take_len = pre.size
            self._take_pre_roll = pre.size
            self._truncated = False

    @property
    def recording(self) -> bool:
        return self._take is not None

    @property
    def length(self) -> int:
        """Samples in the running (or last) take, pre-roll included."""
        with self._cond:
            return self._take_len

    @property
    def pre_roll_length(self) -> int:
        """Samples of the running (or last) take that came from the pre-roll."""
        return self._take_pre_roll

    @property
    def truncated(self) -> bool:
        """True when the last take reached `max_take` and its end was dropped."""
        return self._truncated

    def wait_for(self, samples: int, deadline: float) -> None:
        """Wait (until `deadline`, a monotonic time) for `samples` after the pre-roll;
        returns early when the take ends, is full, or the device is lost."""
        target = self._take_pre_roll + samples
        with self._cond:
            while self._take is not None and self._take_len < target and self._lost is None:
                if self._take_len >= self._take_cap:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(timeout=min(remaining, 0.1))

    def short_of(self, samples: int) -> list[np.ndarray] | None:
        """The take's blocks if it runs, holds under `samples` after its pre-roll and is
        not full (the device is too slow); else None."""
        with self._cond:
            target = self._take_pre_roll + samples
            if self._take is not None and self._take_len < target and self._take_len < self._take_cap:
                return list(self._take)
            return None

    def peek(self) -> list[np.ndarray]:
        """The running take's blocks so far; the take keeps running."""
        with self._cond:
            if self._take is None:
                raise AudioDeviceError("no take is running")
            return list(self._take)

    def end(self) -> list[np.ndarray]:
        """End the running take and return its blocks."""
        with self._cond:
            if self._take is None:
                raise AudioDeviceError("no take is running")
            blocks, self._take = self._take, None
            return blocks

    def discard(self) -> None:
        """Drop the running take, if any."""
        with self._cond:
            self._take = None
