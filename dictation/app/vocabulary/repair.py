"""Phonetic repair: after decoding, words that sound like a vocabulary phrase and that the
model was unsure of are replaced by the phrase, if the model itself finds the repaired
text nearly as likely as what it wrote.

The beam search with the trie's bias (`trie`) only finds a phrase whose tokens stay near
the top of the beam; a rare word the model spells as ordinary words ("a concho" for
"Okonkwo", "choir vain" for "Quorvane") is lost there. Here

1. candidates are runs of 1-4 written words whose sound key (`phonetic.sound_key`) is
   within `max_cost` of a phrase's or its sounds-like spelling's (`similarity_cost`), and
   that hold a word the model was unsure of (a token log-probability below `unsure`) and
   no vocabulary phrase already;
2. overlapping candidates form a group; the best few of a group (by sound) are scored by
   the decoder itself, forced along their tokens (`ForcedScore`, a `decoding.Bias` that
   allows one token per step), and the likeliest is kept if it is at most `margin` nats
   less likely than the text it would replace. So the sound key proposes and the
   acoustic model decides.

`contest` handles the bias's own mistakes: where the biased decoding put one phrase in
("Kubernetes" for "corvey update") and another sounds clearly closer to the plain words
there (Quorvane for "corvey"), the other is written if the decoder finds it within
`margin` of the biased text.

Measured with `python benchmarks/vocabulary.py` (main set and real recorded lines
`--real 400`, the only ones tuned on): words right 78 % -> 90 %, WER of the plain
sentences unchanged. A sweep over one run's scored candidates: cost 0.35, unsure -0.5,
margin 25 (91 % in a full run) wrote a phrase into 7 of the 400 real lines ("again" ->
Nguyen, "key belongs" -> Kubernetes); unsure -0.8, margin 22 and no phrase with a sound
key under `MIN_KEY_WEIGHT` into 1, for one word fewer. Margin 20 lost 5 more words, cost
0.25 3. Held-out words and other real lines (`--set heldout`, `--real-offset 1`): 74 % ->
86 %, WER of the plain sentences unchanged, of 400 real lines 12.57 % -> 12.50 % (with
1216 lines in the corpus; with 1532, other lines: 9.65 % -> 9.72 %).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from dictation.app.decoding import EOT
from dictation.app.vocabulary.entries import VocabularyEntry
from dictation.app.vocabulary.phonetic import KeyTable, key_weight, similarity_cost, sound_key

MAX_COST = 0.35  # sound keys this close (0 same, ~1 unrelated) make a candidate
UNSURE_WORD_LOGP = -0.8  # a candidate holds a word with a token this unlikely, or less
MARGIN = 22.0  # the repaired text may be this many nats less likely than the written one
MIN_KEY_WEIGHT = 4.0  # a phrase with a shorter sound key ("Nguyen", NKAN) sounds like too much
CONTEST_GAP = 0.1  # a rival to the biased decoding's phrase sounds closer by this much
MAX_WINDOW = 4  # written words one phrase may stand for (beyond the phrase's own words)
PER_GROUP = 3  # overlapping candidates scored against each other, at most
MAX_SCORED = 6  # candidates scored per utterance, at most


def _letters(word: str) -> str:
    return re.sub(r"[^\w']", "", word.casefold())


Region = tuple[int, int, int, int]  # words [a, b) of a merged text stand for plain words [c, d)


@dataclass(frozen=True)
class Candidate:
    """Words [start, end) of the text, to be written as `phrase`; `cost`: the sound keys'
    distance, `doubt`: the lowest token log-probability among the words."""

    start: int
    end: int
    phrase: str
    cost: float
    doubt: float


class ForcedScore:
    """A `decoding.Bias` that lets the decoder write only `tokens` and then end, noting the
    log-probability of each (`total`: their sum, end of text included; None if the
    decoding did not follow the whole text, e.g. a masked token or the token budget)."""

    def __init__(self, tokens: list[int]) -> None:
        self.target = [*tokens, EOT]
        self.logps: list[float] = []

    def adjust(self, tokens: list[int], row: np.ndarray) -> np.ndarray:
        i = len(tokens)
        token = self.target[i] if i < len(self.target) else EOT
        finite = row[np.isfinite(row)]
        out = np.full_like(row, -np.inf)
        if finite.size and np.isfinite(row[token]):
            top = float(finite.max())
            norm = top + float(np.log(np.exp(finite - top).sum()))
            if i == len(self.logps):
                self.logps.append(float(row[token]) - norm)
            out[token] = row[token]
        return out

    @property
    def total(self) -> float | None:
        return sum(self.logps) if len(self.logps) == len(self.target) else None


class PhoneticRepair:
    """The vocabulary's phrases by sound key; `__call__` repairs one decoded text."""

    def __init__(
        self,
        entries: Iterable[VocabularyEntry],
        max_cost: float = MAX_COST,
        unsure: float = UNSURE_WORD_LOGP,
        margin: float = MARGIN,
    ) -> None:
        self.max_cost, self.unsure, self.margin = max_cost, unsure, margin
        self.forms: list[tuple[str, str, int]] = []  # (sound key, phrase written, words)
        self.known: set[str] = set()  # the phrases' and spellings' words, normalised
        for entry in entries:
            for form in dict.fromkeys(f for f in (entry.phrase, entry.sounds_like) if f):
                key = sound_key(form)
                if key_weight(key) >= MIN_KEY_WEIGHT:
                    self.forms.append((key, entry.phrase, len(form.split())))
                self.known.update(_letters(w) for w in form.split())
        self.table = KeyTable([key for key, _, _ in self.forms])
        # The candidates scored (and their log-probability against the text they would
        # replace) since `last` was last emptied; for a benchmark's report, not thread-safe.
        self.last: list[tuple[Candidate, float | None]] = []

    def __bool__(self) -> bool:
        return bool(self.forms)

    def candidates(self, words: list[tuple[str, float]]) -> list[list[Candidate]]:
        """The candidates in `words` (text, lowest token log-probability), in groups of
        overlapping ones (left to right), each group best first and cut to `PER_GROUP`."""
        found: list[Candidate] = []
        normed = [_letters(w) for w, _ in words]
        for start in range(len(words)):
            for end in range(start + 1, min(len(words), start + MAX_WINDOW) + 1):
                span = normed[start:end]
                doubt = min(c for _, c in words[start:end])
                if doubt >= self.unsure or any(w in self.known for w in span):
                    continue
                costs = self.table.costs(sound_key(" ".join(span)))
                for (_, phrase, n_words), cost in zip(self.forms, costs, strict=True):
                    if cost <= self.max_cost and end - start <= n_words + MAX_WINDOW - 1:
                        found.append(Candidate(start, end, phrase, cost, doubt))
        groups: list[list[Candidate]] = []
        for c in sorted(found, key=lambda c: (c.start, c.end)):
            if groups and c.start < max(o.end for o in groups[-1]):
                groups[-1].append(c)
            else:
                groups.append([c])
        return [sorted(g, key=lambda c: (c.cost, c.end - c.start))[:PER_GROUP] for g in groups]

    def __call__(self, words: list[tuple[str, float]], score: Callable[[str], float | None], logp: float | None) -> str:
        """`words` with the candidates the decoder accepts written as their phrases;
        `score(text)`: the decoder's log-probability of a text (None: not scorable);
        `logp`: that of the text of `words` as it is (None: score it here)."""
        current = [w for w, _ in words]
        groups = self.candidates(words)
        if not groups:
            return " ".join(current)
        if logp is None:
            logp = score(" ".join(current))
            if logp is None:
                return " ".join(current)
        budget = MAX_SCORED
        for group in reversed(groups):  # right to left: the indices on the left stay valid
            best: tuple[float, list[str]] | None = None
            for c in group[:budget]:
                trial = replaced(current, c)
                new = score(" ".join(trial))
                budget -= 1
                self.last.append((c, None if new is None else new - logp))
                if new is not None and new >= logp - self.margin and (best is None or new > best[0]):
                    best = (new, trial)
            if best is not None:
                logp, current = best
        return " ".join(current)

    def contest(
        self,
        words: list[tuple[str, float]],
        regions: list[Region],
        plain: list[tuple[str, float]],
        score: Callable[[str], float | None],
    ) -> tuple[list[tuple[str, float]], float | None]:
        """`words`: the plain words with biased ones merged in at `regions`. Where another
        phrase sounds closer to the plain words a region replaced, the decoder decides
        between the two texts. Returns the words and their log-probability (None: not
        scored here)."""
        logp: float | None = None
        for out_start, out_end, plain_start, plain_end in reversed(regions):
            region = plain[plain_start:plain_end]
            taken = " ".join(w for w, _ in words[out_start:out_end])
            cost = similarity_cost(sound_key(" ".join(w for w, _ in region)), sound_key(taken))
            rivals = [
                c
                for g in self.candidates(region)
                for c in g
                if _letters(c.phrase) not in _letters(taken) and c.cost <= cost - CONTEST_GAP
            ]
            if not rivals:
                continue
            rival = min(rivals, key=lambda c: c.cost)
            reverted = [*words[:out_start], *region, *words[out_end:]]
            shifted = Candidate(rival.start + out_start, rival.end + out_start, rival.phrase, rival.cost, rival.doubt)
            other = replaced([w for w, _ in reverted], shifted)
            mine = score(" ".join(w for w, _ in words)) if logp is None else logp
            theirs = score(" ".join(other))
            self.last.append((shifted, None if theirs is None or mine is None else theirs - mine))
            if theirs is not None and (mine is None or theirs >= mine - self.margin):
                confs = [c for _, c in reverted[: shifted.start]] + [0.0] + [c for _, c in reverted[shifted.end :]]
                words, logp = list(zip(other, confs, strict=True)), theirs
            else:
                logp = mine
        return words, logp


def replaced(words: list[str], c: Candidate) -> list[str]:
    """`words` with candidate `c` written in."""
    capital = c.start == 0 or words[c.start - 1][-1:] in ".!?"
    return [*words[: c.start], _fit(words[c.start : c.end], c.phrase, capital), *words[c.end :]]


def _fit(replaced: list[str], phrase: str, capital: bool) -> str:
    """`phrase` in the place of `replaced`: their leading and trailing punctuation kept, a
    capital first letter where a sentence starts."""
    lead = re.match(r"^\W*", replaced[0])
    tail = re.search(r"\W*$", replaced[-1])
    if capital:
        phrase = phrase[:1].upper() + phrase[1:]
    return (lead.group(0) if lead else "") + phrase + (tail.group(0) if tail else "")
