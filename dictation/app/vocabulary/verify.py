"""Verified biasing: the biased transcript is kept only where it puts a vocabulary phrase in
place of words the model itself was unsure of.

A strong bias finds rare words the model misspells, but it also pulls phrases into plain
speech (a confident "home" becomes a surname, a phrase is appended to the end, a text is
cut short after one). So decoding runs twice when the vocabulary could matter:

1. without bias, recording the log-probability of every token of the hypotheses
   (`Recorder`, a bias that adds nothing, so this pass is exactly the plain decoding),
   and whether a phrase could start anywhere (if not, the second pass is skipped);
2. with the bias.

The two texts are aligned word by word (`merge`): a region where they differ takes the
biased words only if they hold exactly one vocabulary phrase (and the plain words none),
the plain words there were uncertain (their lowest token log-probabilities average below
`UNSURE_LOGP`) and the two are of a comparable length; everywhere else the plain text
stands.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import SequenceMatcher
from typing import Any

import numpy as np

from dictation.app.decoding import EOT
from dictation.app.vocabulary.trie import PhraseBias

RECORD_TOP = 8  # best next tokens kept per prefix
UNSURE_LOGP = -0.5  # plain words whose lowest token log-probabilities average below this were unsure
UNLISTED_LOGP = -10.0  # a token outside the recorded best ones
LENGTH_RATIO = 2.0  # plain and phrase letters within this factor of each other


class Recorder:
    """A `decoding.Bias` that changes nothing: it notes, per text prefix, the best next
    tokens' log-probabilities, and whether `bias` could start a phrase somewhere."""

    def __init__(self, bias: PhraseBias) -> None:
        self.bias = bias
        self.best: dict[tuple[int, ...], dict[int, float]] = {}
        self.phrase_possible = False

    def adjust(self, tokens: list[int], row: np.ndarray) -> np.ndarray:
        finite = row[np.isfinite(row)]
        if finite.size:
            top = float(finite.max())
            norm = top + float(np.log(np.exp(finite - top).sum()))
            ids = np.argpartition(row, -RECORD_TOP)[-RECORD_TOP:]
            self.best[tuple(tokens)] = {int(i): float(row[i]) - norm for i in ids if np.isfinite(row[i])}
        if not self.phrase_possible:
            self.phrase_possible = self.bias.could_start(tokens, row)
        return row

    def token_logps(self, tokens: list[int]) -> list[float]:
        return [self.best.get(tuple(tokens[:i]), {}).get(t, UNLISTED_LOGP) for i, t in enumerate(tokens)]

    def text_logp(self, tokens: list[int]) -> float | None:
        """The log-probability of `tokens` and the end of text after them; None when a
        token was not among the recorded best ones."""
        logps = self.token_logps([*tokens, EOT])
        return None if UNLISTED_LOGP in logps else sum(logps)


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.casefold())


def word_confidences(tokens: list[int], logps: list[float], tokenizer: Any) -> list[tuple[str, float]]:
    """The words of the decoded text, each with the lowest log-probability of its tokens."""
    text = tokenizer.decode(tokens)
    ends = []  # where each token's text ends in `text`
    for i in range(len(tokens)):
        ends.append(len(tokenizer.decode(tokens[: i + 1])))
    words = []
    for match in re.finditer(r"\S+", text):
        start, end = match.span()
        inside = [lp for i, lp in enumerate(logps) if ends[i] > start and (i == 0 or ends[i - 1] < end)]
        words.append((match.group(0), min(inside) if inside else 0.0))
    return words


def merge(plain: list[tuple[str, float]], biased_text: str, phrases: Iterable[str], unsure: float = UNSURE_LOGP) -> str:
    """The plain words, with the biased words in each region where they are exactly one
    vocabulary phrase replacing uncertain plain words of a comparable length."""
    return " ".join(w for w, _ in merge_words(plain, biased_text, phrases, unsure)[0])


def merge_words(
    plain: list[tuple[str, float]], biased_text: str, phrases: Iterable[str], unsure: float = UNSURE_LOGP
) -> tuple[list[tuple[str, float]], list[tuple[int, int, int, int]]]:
    """`merge` as words with their confidences (a phrase taken from the biased text: 0),
    and the regions taken: (start, end) in the merged words, (start, end) in `plain`."""
    spoken = {" ".join(_norm(w) for w in p.split()) for p in phrases}
    biased = biased_text.split()
    matcher = SequenceMatcher(a=[_norm(w) for w, _ in plain], b=[_norm(w) for w in biased], autojunk=False)
    out: list[tuple[str, float]] = []
    regions = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        region = plain[i1:i2]
        taken = biased[j1:j2]
        if tag == "replace" and _acceptable(region, taken, spoken, unsure):
            regions.append((len(out), len(out) + len(taken), i1, i2))
            out += [(w, 0.0) for w in taken]
        else:
            out += region
    return out, regions


def phrases_in(words: list[str], spoken: set[str], longest: int) -> int:
    """How many vocabulary phrases `words` holds (greedy, longest first, no overlaps)."""
    normed, found, i = [_norm(w) for w in words], 0, 0
    while i < len(normed):
        for n in range(min(longest, len(normed) - i), 0, -1):
            if " ".join(normed[i : i + n]) in spoken:
                found, i = found + 1, i + n
                break
        else:
            i += 1
    return found


def _acceptable(plain: list[tuple[str, float]], taken: list[str], spoken: set[str], unsure: float) -> bool:
    longest = max((len(p.split()) for p in spoken), default=0)
    if phrases_in(taken, spoken, longest) != 1 or phrases_in([w for w, _ in plain], spoken, longest):
        return False  # one phrase coming in, none going out
    if sum(conf for _, conf in plain) / len(plain) >= unsure:
        return False  # the model was sure of what it wrote there
    plain_letters = sum(len(_norm(w)) for w, _ in plain)
    taken_letters = sum(len(_norm(w)) for w in taken)
    return taken_letters / LENGTH_RATIO <= plain_letters <= taken_letters * LENGTH_RATIO
