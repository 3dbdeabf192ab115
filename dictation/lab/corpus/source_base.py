"""What every speech source is: its speakers, the items each speaks, a clip's rendering.

`dictation.lab.corpus.sources` holds the synthesizers and the registry;
`dictation.lab.corpus.game_sources` the real recorded voices of games.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dictation.lab.corpus.texts import sentences_for

# Default utterances per speaker; cheap engines get more (more hours for free).
DEFAULT_UTTERANCES = {"kokoro": 40, "espeak": 50}
FAST_UTTERANCES = 60


@dataclass
class Speaker:
    id: str
    source: str
    licence: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Item:
    key: str  # file stem, unique within the speaker
    text: str
    payload: dict[str, Any] = field(default_factory=dict)


class Source:
    name = ""
    licence = ""
    reads_generated_text = True  # its speakers read `sentences_for` (WordNet + templates)
    # What renders its clips, recorded with their versions by each build (engines.json):
    # "deb:NAME" Debian packages, "py:NAME" Python distributions.
    packages: tuple[str, ...] = ()

    def check(self) -> None:
        raise NotImplementedError

    def speakers(self, seed: int) -> list[Speaker]:
        raise NotImplementedError

    def items(self, speaker: Speaker, count: int | None, seed: int) -> list[Item]:
        """Sentences to synthesize (synthetic sources); FOTAQ overrides this."""
        n = count or DEFAULT_UTTERANCES.get(self.name, FAST_UTTERANCES)
        return [Item(f"{i:04d}", t) for i, t in enumerate(sentences_for(speaker.id, n, seed))]

    def render(self, speaker: Speaker, item: Item) -> tuple[np.ndarray, int]:
        raise NotImplementedError
