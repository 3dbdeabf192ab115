"""Real recorded speech of games: one speaker per character, the game's own lines
(Flight of the Amazon Queen: `fotaq`; Beneath a Steel Sky: `bass`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from dictation.lab.corpus import bass, fotaq
from dictation.lab.corpus.common import decode_audio
from dictation.lab.corpus.source_base import Item, Source, Speaker


class GameDialogue(Source):
    """Real recorded speech of a game: one speaker per character, the game's own lines.

    Subclasses say how their clips are found and read; the speakers (most clips first) and
    the deterministic subsets (spread over the game rather than its first scenes) are
    the same for every game."""

    reads_generated_text = False  # the game's own dialogue
    _clips: list | None = None
    _where: Path | None = None

    def _find(self) -> Path:
        """Where the game's data is (EngineUnavailable, with the install hint, if absent)."""
        raise NotImplementedError

    def _load(self, where: Path) -> list:
        """Every matched clip of the game (each with `character`, `name`, `text`)."""
        raise NotImplementedError

    def _speaker_id(self, character: str) -> str:
        raise NotImplementedError

    def _order(self, clip: Any) -> Any:
        """The order of a subset's clips (the game's own)."""
        raise NotImplementedError

    def _item(self, clip: Any, where: Path) -> Item:
        raise NotImplementedError

    def check(self) -> None:
        self._data()

    def _data(self) -> Path:
        if self._where is None:
            self._where = self._find()
        return self._where

    def _all(self) -> list:
        if self._clips is None:
            self._clips = self._load(self._data())
        return self._clips

    def speakers(self, seed: int) -> list[Speaker]:
        counts: dict[str, int] = {}
        for c in self._all():
            counts[c.character] = counts.get(c.character, 0) + 1
        order = sorted(counts, key=lambda ch: (-counts[ch], ch))
        return [Speaker(self._speaker_id(ch), self.name, self.licence, {"character": ch}) for ch in order]

    def items(self, speaker: Speaker, count: int | None, seed: int) -> list[Item]:
        mine = [c for c in self._all() if c.character == speaker.params["character"]]
        if count is not None and count < len(mine):
            key = lambda c: hashlib.sha1(f"{seed}:{c.name}".encode()).hexdigest()  # noqa: E731
            mine = sorted(sorted(mine, key=key)[:count], key=self._order)
        where = self._data()
        return [self._item(c, where) for c in mine]


class Fotaq(GameDialogue):
    """Flight of the Amazon Queen."""

    name, licence = "fotaq", fotaq.LICENCE
    packages = ("deb:flight-of-the-amazon-queen",)

    def _find(self) -> Path:
        return fotaq.find_archive()

    def _load(self, where: Path) -> list:
        return fotaq.clips(where)

    def _speaker_id(self, character: str) -> str:
        return f"fotaq-{character.lower()}"

    def _order(self, clip: Any) -> Any:
        return clip.name

    def _item(self, clip: Any, where: Path) -> Item:
        payload = {"archive": str(where), "offset": clip.offset, "size": clip.size}
        return Item(clip.name.rsplit(".", 1)[0], clip.text, payload)

    def render(self, speaker: Speaker, item: Item) -> tuple[np.ndarray, int]:
        p = item.payload
        raw = fotaq.read_entry(Path(p["archive"]), fotaq.Entry(item.key, p["offset"], p["size"]))
        return decode_audio(raw)


class Bass(GameDialogue):
    """Beneath a Steel Sky."""

    name, licence = "bass", bass.LICENCE
    packages = ("deb:beneath-a-steel-sky",)

    def _find(self) -> Path:
        return bass.find_data()

    def _load(self, where: Path) -> list:
        return bass.clips(where)

    def _speaker_id(self, character: str) -> str:
        return f"bass-{character.replace('_', '-')}"

    def _order(self, clip: Any) -> Any:
        return clip.text_number

    def _item(self, clip: Any, where: Path) -> Item:
        return Item(clip.name, clip.text, {"folder": str(where), "speech": clip.speech_file})

    def render(self, speaker: Speaker, item: Item) -> tuple[np.ndarray, int]:
        return bass.read_clip(Path(item.payload["folder"]), item.payload["speech"])
