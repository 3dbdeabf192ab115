"""Contextual biasing: a token trie of the vocabulary's phrases and a bounded bonus for
following it, added inside the beam search (shallow fusion with a prefix trie).

Each token that extends a phrase being matched earns `per_token` (log-probability, nats),
up to `max_phrase` for one phrase. The bonus only stays if the phrase is completed: a
hypothesis that leaves a phrase half-way gives back what it earned for it on its next
token (end of text included). So a hypothesis that merely starts like a vocabulary word
gains nothing in the end, and the final ranking sees a completed phrase's bonus only.
A completed phrase must also end a word: given the tokens that continue a word (no
leading space or punctuation), the next one of them gives the phrase's bonus back, so
"Vexilar" + "ake" (for the spoken "Vexilar ... the lake") is not a cheap way to the bonus.

The bonus of a text is a function of the text alone (the completed phrases it holds, plus
what the open partial match has earned so far), so `PhraseBias` keeps no state between
calls: each call finds the partial matches in the last few tokens. That is safe to share
between threads and costs a few dictionary look-ups per hypothesis per step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dictation.app.decoding import EOT

ROOT = 0


@dataclass(frozen=True)
class BiasWeights:
    """How strongly the vocabulary pulls: nats per matched token, and at most per phrase."""

    # Measured (`python benchmarks/vocabulary.py`): 2 / 6 fixed 28 % of the misspelled
    # words, 5 / 20 76 %; stronger first tokens crowd plain text out of a 4-wide beam.
    per_token: float = 5.0
    max_phrase: float = 20.0
    first_token: float | None = None  # the first token's bonus (None: per_token)
    # A phrase may only start with a token the model itself finds within this many nats
    # of its best: a bonus cannot conjure a phrase out of no acoustic evidence.
    start_window: float = float("inf")

    def earned(self, depth: int) -> float:
        """Bonus earned by `depth` matched tokens of one phrase."""
        if depth <= 0:
            return 0.0
        first = self.per_token if self.first_token is None else self.first_token
        return min(first + self.per_token * (depth - 1), self.max_phrase)


class PhraseTrie:
    """Token sequences of phrases, sharing prefixes. Node 0 is the root."""

    def __init__(self, sequences: Iterable[list[int]] = ()) -> None:
        self.children: list[dict[int, int]] = [{}]
        self.depth: list[int] = [0]
        self.terminal: list[bool] = [False]
        self.parent: list[int] = [ROOT]
        for tokens in sequences:
            self.insert(tokens)

    def insert(self, tokens: list[int]) -> None:
        if not tokens:
            return
        node = ROOT
        for token in tokens:
            child = self.children[node].get(int(token))
            if child is None:
                child = len(self.children)
                self.children[node][int(token)] = child
                self.children.append({})
                self.depth.append(self.depth[node] + 1)
                self.terminal.append(False)
                self.parent.append(node)
            node = child
        self.terminal[node] = True

    def __len__(self) -> int:
        """Number of nodes besides the root."""
        return len(self.children) - 1

    @property
    def max_depth(self) -> int:
        return max(self.depth)

    def matches(self, tokens: list[int]) -> list[int]:
        """Nodes reached by the suffixes of `tokens` (partial or complete phrases ending
        at its last token), root excluded; only the last `max_depth` tokens can matter."""
        active: list[int] = []
        for token in tokens[-self.max_depth :] if self.max_depth else []:
            active = [c for n in (*active, ROOT) if (c := self.children[n].get(token)) is not None]
        return active


class PhraseBias:
    """`dictation.app.decoding.Bias` over a `PhraseTrie` (see the module docstring)."""

    def __init__(
        self, trie: PhraseTrie, weights: BiasWeights | None = None, word_tail: np.ndarray | None = None
    ) -> None:
        self.trie, self.weights = trie, weights or BiasWeights()
        # Tokens that continue the word before them (no leading space or punctuation): a
        # phrase followed by one was not said as a word ("Vexilar" + "ake"), so its bonus goes back.
        self.word_tail = None if word_tail is None else np.flatnonzero(word_tail)
        w = self.weights
        # Relative to the nearest completed phrase above a node (a phrase inside a longer
        # one, "New York" in "New York City"), so its bonus is not paid twice.
        self.at_risk = [0.0] * len(trie.children)  # earned by an open match, given back on leaving
        self.lock = [0.0] * len(trie.children)  # kept for good when the node completes a phrase
        for node in range(1, len(trie.children)):
            above = trie.parent[node]
            while above != ROOT and not trie.terminal[above]:
                above = trie.parent[above]
            base = w.earned(trie.depth[above])
            gained = w.earned(trie.depth[node]) - base
            if trie.terminal[node]:
                self.lock[node] = gained
            else:
                self.at_risk[node] = gained
        root = trie.children[ROOT]
        self._start_tokens = np.fromiter(root.keys(), dtype=np.int64, count=len(root))
        self._start_bonus = np.array([self._step_bonus([c]) for c in root.values()], dtype=np.float32)

    def _open_risk(self, nodes: list[int]) -> float:
        """What the deepest open (not completed) partial match among `nodes` has earned."""
        best, risk = -1, 0.0
        for n in nodes:
            if not self.trie.terminal[n] and self.trie.depth[n] > best:
                best, risk = self.trie.depth[n], self.at_risk[n]
        return risk

    def _step_bonus(self, reached: list[int]) -> float:
        """Bonus of the text after a token that reaches `reached`, before any give-back."""
        return sum(self.lock[n] for n in reached if self.trie.terminal[n]) + self._open_risk(reached)

    def _starts(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The phrase-start tokens allowed a bonus in this row, and their bonuses."""
        starts, bonus = self._start_tokens, self._start_bonus
        best = int(np.argmax(row))
        if best == EOT:  # the speech is over: no phrase may be appended to it
            return starts[:0], bonus[:0]
        if np.isfinite(self.weights.start_window):
            plausible = row[starts] >= row[best] - self.weights.start_window
            return starts[plausible], bonus[plausible]
        return starts, bonus

    def could_start(self, tokens: list[int], row: np.ndarray) -> bool:
        """Whether `adjust` would give any bonus here (a phrase open or allowed to start)."""
        if not len(self._start_tokens):
            return False
        return bool(self.trie.matches(tokens)) or bool(len(self._starts(row)[0]))

    def adjust(self, tokens: list[int], row: np.ndarray) -> np.ndarray:
        if not len(self._start_tokens):
            return row
        active = self.trie.matches(tokens)
        out = np.array(row, dtype=np.float32, copy=True)
        starts, bonus = self._starts(row)
        if not active:  # the common case: only phrase starts get a bonus
            out[starts] += bonus
            return out
        risk = self._open_risk(active)
        if risk:
            out -= np.float32(risk)  # any token that leaves the open phrase gives it back
        if self.word_tail is not None:
            completed = sum(self.lock[n] for n in active if self.trie.terminal[n])
            if completed:
                out[self.word_tail] -= np.float32(completed)
        out[starts] += bonus
        children = self.trie.children
        extending = {t for n in active for t in children[n]}
        for token in extending:
            reached = [c for n in (*active, ROOT) if (c := children[n].get(token)) is not None]
            out[token] = row[token] + np.float32(self._step_bonus(reached) - risk)
        return out
