"""What the app learned from use: dictations the user accepted unchanged or corrected.

With the user's consent (the profile setting ``learn_from_use``, see
`dictation.app.gui.learning`) a dictation becomes adaptation material:

- *accepted*: delivered (copied, typed into an application) and not corrected, with a
  high model confidence; kept in ``learned/`` like a take: ``<id>.wav`` (16 kHz PCM-16,
  0600) and ``<id>.json`` ``{"id", "prompt_id": "accepted", "text", "hypothesis",
  "quality": {"source", "confidence"}, "created"}``, both written atomically;
- *corrected*: a correction ("Mark as correct"), kept where corrections always were
  (``corrections/``, what the adaptation reads already), so each exists once.

The material is capped (`MAX_ITEMS`): when it grows past the cap, the oldest accepted
dictations are removed; corrections never are (the user made them; only the user
deletes one, on the "What I learned" page). ``learning.json`` (profile top level, so
that a scan of ``learned/*.json`` never mistakes it for an item) records the background
adaptation runs: when each started and ended, and what its check measured.
No torch and no Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dictation.app import storage
from dictation.app.profiles.errors import CorruptProfileError, ProfileError
from dictation.app.profiles.files import LEARNED, LEARNING_JSON, ProfileLocation, new_id, now, read_json_dict
from dictation.app.profiles.takes import Recordings, Take

SOURCES = ("accepted", "corrected")
MAX_ITEMS = 200  # ~10 s each: about 60 MB of audio at most, besides the corrections
MAX_RUNS = 100  # background adaptation runs remembered (for the accuracy chart)


@dataclass(frozen=True)
class LearnedItem:
    """One piece of material: a dictation's audio and its final text."""

    id: str
    source: str  # "accepted" or "corrected"
    text: str  # what the adaptation learns: the accepted or the corrected words
    hypothesis: str  # what the model recognised
    confidence: float | None  # the model's (mean token probability); None if unknown
    created: str  # ISO time (UTC)
    wav_path: Path

    def word_errors(self) -> tuple[int, int]:
        """(words the model got wrong, words) of this dictation: 0 errors when accepted."""
        from dictation.app.text import word_errors

        return word_errors([self.text], [self.hypothesis])[0]


def _item(take: Take, source: str) -> LearnedItem:
    confidence = take.quality.get("confidence")
    return LearnedItem(
        id=take.id,
        source=source,
        text=take.text,
        hypothesis=take.hypothesis if take.hypothesis is not None else take.text,
        confidence=float(confidence) if isinstance(confidence, int | float) else None,
        created=take.created,
        wav_path=take.wav_path,
    )


class LearnedMaterial:
    """The accepted dictations (``learned/``) and the corrections, as one capped list."""

    def __init__(self, location: ProfileLocation, corrections: Recordings, cap: int = MAX_ITEMS) -> None:
        self.location = location
        self.folder = location.path / LEARNED
        self.accepted_store = Recordings(location, LEARNED)
        self.correction_store = corrections
        self.cap = cap
        self.runs_path = location.path / LEARNING_JSON

    # -- items -----------------------------------------------------------------------

    def add(
        self,
        audio: np.ndarray,
        text: str,
        source: str,
        confidence: float | None = None,
        hypothesis: str | None = None,
    ) -> LearnedItem:
        """Keep a dictation's audio with its final `text`; then prune to the cap.

        `source` "accepted" (kept in ``learned/``) or "corrected" (kept with the
        corrections; `hypothesis`, what was recognised, is needed then)."""
        if source not in SOURCES:
            raise ProfileError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        quality: dict = {"source": source}
        if confidence is not None:
            quality["confidence"] = round(float(confidence), 4)
        if source == "corrected":
            if not isinstance(hypothesis, str):
                raise ProfileError("a corrected dictation needs the recognised text (hypothesis)")
            take = self.correction_store.add("correction", text, audio, quality, hypothesis)
        else:
            self.location.ensure_subdir(LEARNED)
            take = self.accepted_store.add("accepted", text, audio, quality, hypothesis if hypothesis else text)
        item = _item(take, source)
        self.prune()
        return item

    def items(self) -> list[LearnedItem]:
        """All readable material, oldest first."""
        found = [_item(t, "accepted") for t in self.accepted_store.readable()]
        found += [_item(t, "corrected") for t in self.correction_store.readable()]
        return sorted(found, key=lambda item: item.id)

    def accepted(self) -> list[Take]:
        """The accepted dictations as takes, oldest first (the adaptation reads these
        beside the enrollment takes and the corrections)."""
        return self.accepted_store.readable()

    def delete(self, item_id: str) -> None:
        """Delete one item (the user asked): an accepted dictation or a correction."""
        if (self.folder / f"{item_id}.json").is_file():
            self.accepted_store.remove(item_id)
        else:
            self.correction_store.remove(item_id)  # ProfileError when it is not there either

    def prune(self) -> list[str]:
        """Remove the oldest accepted dictations while there are more items than the cap;
        return their ids. Corrections are never removed here."""
        items = self.items()
        excess = len(items) - self.cap
        removed: list[str] = []
        for item in items:
            if excess <= 0:
                break
            if item.source == "accepted":
                self.accepted_store.remove(item.id)
                removed.append(item.id)
                excess -= 1
        return removed

    def over_cap(self) -> int:
        """How many items are over the cap (corrections only: they wait for the user)."""
        return max(0, len(self.items()) - self.cap)

    def new_since(self, time_iso: str) -> int:
        """Items created after `time_iso` ("" counts all)."""
        return sum(1 for item in self.items() if item.created > time_iso)

    # -- background adaptation runs ---------------------------------------------------

    def runs(self) -> list[dict]:
        """The background adaptation runs, oldest first ([] when none or unreadable)."""
        if not self.runs_path.exists():
            return []
        try:
            runs = read_json_dict(self.runs_path).get("runs")
        except CorruptProfileError:
            return []  # only a record for the chart: the next run writes a good one
        if not isinstance(runs, list):
            return []
        return [r for r in runs if isinstance(r, dict) and isinstance(r.get("started"), str)]

    def record_run(self, run: dict) -> None:
        """Add a run, or update the one with its ``id`` (else the same ``started`` time)."""
        if not isinstance(run.get("started"), str):
            raise ProfileError("a run needs its 'started' time")
        key = _run_key(run)
        runs = [r for r in self.runs() if _run_key(r) != key]
        runs = sorted([*runs, dict(run)], key=lambda r: r["started"])[-MAX_RUNS:]
        with self.location.writing():
            storage.atomic_write_json(self.runs_path, {"runs": runs}, make_parents=False)

    def last_run_started(self) -> str:
        """When the last background run started ("" if none ever did)."""
        runs = self.runs()
        return runs[-1]["started"] if runs else ""


def run_started() -> dict:
    """A run record for an adaptation starting now."""
    return {"id": new_id(), "started": now(), "status": "running"}


def _run_key(run: dict) -> str:
    return str(run.get("id") or run["started"])
