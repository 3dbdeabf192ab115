"""A rule-based sound key of English spelling and a distance between keys, so a word the
recogniser misspelt ("a concho") can be matched to the vocabulary phrase that was said
("Okonkwo") without any pronouncing dictionary.

`sound_key` maps letters to coarse sound classes, Metaphone-like but keeping vowels as
one class: voicing is ignored (b/p, d/t, g/k, v/f, z/s), soft c is S, ph F, th 0, sh/ch/j
X, qu KW, x KS, silent final e and silent h are dropped; vowel runs become one "A" and
repeated symbols collapse. `key_distance` is a weighted edit distance between keys:
vowels, h and glides are cheap to insert or drop, near sounds (th/f/t, s/sh, m/n, l/r,
p/f, k/x) cheap to swap. `similarity_cost` is that distance over the heavier key's weight
(0 same sound, about 1 unrelated); `KeyTable` computes it against many keys at once.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

VOWEL = "A"
VOWEL_LETTERS = frozenset("aeiouy")
# (letters, symbols), longest first within a start letter; "" drops the letters.
_DIGRAPHS: dict[str, list[tuple[str, str]]] = {
    "c": [("cch", "K"), ("chr", "KR"), ("ch", "X"), ("ck", "K"), ("cz", "X"), ("ce", "SA"), ("ci", "SA"), ("cy", "SA")],
    "d": [("dg", "X")],
    "g": [("gh", ""), ("gn", "N")],
    "k": [("kn", "N")],
    "p": [("ph", "F")],
    "q": [("qu", "KW")],
    "s": [("sch", "SK"), ("sh", "X"), ("sio", "XA"), ("sz", "X")],
    "t": [("tch", "X"), ("th", "0"), ("tio", "XA")],
    "w": [("wh", "W"), ("wr", "R")],
}
_SINGLE = {
    "b": "P", "c": "K", "d": "T", "f": "F", "g": "K", "j": "X", "k": "K", "l": "L", "m": "M",
    "n": "N", "p": "P", "q": "K", "r": "R", "s": "S", "t": "T", "v": "F", "x": "KS", "z": "S",
}  # fmt: skip
SYMBOLS = frozenset("".join(_SINGLE.values()) + "".join(s for d in _DIGRAPHS.values() for _, s in d) + "AHWY")
_NEAR = {frozenset(p) for p in ("0F", "0T", "0S", "SX", "MN", "LR", "PF", "KX", "TX", "FW", "AW", "AY", "AH", "KT")}
_CHEAP = {VOWEL: 0.5, "H": 0.5, "W": 0.6, "Y": 0.6}  # insertion / deletion weights; others 1


def _word_key(word: str) -> str:
    """The key of one word (lowercase letters only)."""
    if len(word) > 3 and word.endswith("e") and word[-2] not in VOWEL_LETTERS:
        word = word[:-1]  # silent final e ("lake", "Quorvane")
    out: list[str] = []
    i = 0
    while i < len(word):
        ch = word[i]
        for letters, symbols in _DIGRAPHS.get(ch, ()):
            if word.startswith(letters, i) and not (letters in ("gn", "kn") and i > 0):
                out.append(symbols)
                i += len(letters)
                break
        else:
            nxt = word[i + 1] if i + 1 < len(word) else ""
            if ch in "aeiou" or (ch == "y" and not (i == 0 and nxt in VOWEL_LETTERS)):
                out.append(VOWEL)
            elif ch == "y":
                out.append("Y")
            elif ch == "w":  # a glide before a vowel, else part of the vowel ("ow", "aw")
                out.append("W" if nxt in VOWEL_LETTERS else VOWEL)
            elif ch == "h":  # sounded only before a vowel
                out.append("H" if nxt in VOWEL_LETTERS and (i == 0 or word[i - 1] in VOWEL_LETTERS) else "")
            else:
                out.append(_SINGLE.get(ch, ""))
            i += 1
    joined = "".join(out)
    return "".join(s for k, s in enumerate(joined) if k == 0 or s != joined[k - 1])


@lru_cache(maxsize=4096)
def sound_key(text: str) -> str:
    """The sound key of a word or phrase (letters only; the words run together, as speech
    does: "Bill Ski" and "Bilski" have one key)."""
    words = ["".join(ch for ch in w.casefold() if "a" <= ch <= "z") for w in text.replace("-", " ").split()]
    joined = "".join(_word_key(w) for w in words if w)
    return "".join(s for k, s in enumerate(joined) if k == 0 or s != joined[k - 1])


def _indel(symbol: str) -> float:
    return _CHEAP.get(symbol, 1.0)


def _swap(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return 0.5 if frozenset((a, b)) in _NEAR else 1.0


def key_weight(key: str) -> float:
    """What it costs to write `key` from nothing."""
    return sum(_indel(s) for s in key)


def key_distance(a: str, b: str) -> float:
    """Weighted edit distance between two sound keys (see the module docstring)."""
    prev = [0.0]
    for s in b:
        prev.append(prev[-1] + _indel(s))
    for x in a:
        row = [prev[0] + _indel(x)]
        for j, y in enumerate(b, 1):
            row.append(min(prev[j] + _indel(x), row[j - 1] + _indel(y), prev[j - 1] + _swap(x, y)))
        prev = row
    return prev[-1]


def similarity_cost(a: str, b: str) -> float:
    """`key_distance` over the heavier key's weight: 0 for one sound, ~1 for unrelated."""
    weight = max(key_weight(a), key_weight(b))
    return key_distance(a, b) / weight if weight else 0.0


class KeyTable:
    """Many sound keys, for `similarity_cost` of one key against all of them at once (the
    same dynamic programme, one numpy column per key: a vocabulary of 2000 phrases costs
    about what a few dozen would one by one)."""

    def __init__(self, keys: list[str]) -> None:
        symbols = sorted({s for key in keys for s in key} | SYMBOLS)
        self._index = {s: i for i, s in enumerate(symbols)}
        self._indel = np.array([_indel(s) for s in symbols])
        self._swap = np.array([[_swap(a, b) for b in symbols] for a in symbols])
        width = max((len(k) for k in keys), default=0)
        self._ids = np.zeros((len(keys), width), dtype=np.int64)
        self._lengths = np.array([len(k) for k in keys], dtype=np.int64)
        for row, key in enumerate(keys):
            self._ids[row, : len(key)] = [self._index[s] for s in key]
        inside = np.arange(width)[None, :] < self._lengths[:, None]
        self._b_indel = np.where(inside, self._indel[self._ids], 0.0)
        self.weights = self._b_indel.sum(axis=1)

    def costs(self, key: str) -> np.ndarray:
        """`similarity_cost(key, k)` for every key k of the table, in its order."""
        n, width = self._ids.shape
        prev = np.concatenate([np.zeros((n, 1)), np.cumsum(self._b_indel, axis=1)], axis=1)
        weight = 0.0
        for symbol in key:
            x = self._index.get(symbol)
            cost_x = _indel(symbol)
            swap = self._swap[x][self._ids] if x is not None else np.ones_like(self._b_indel)  # not a key symbol
            weight += cost_x
            row = np.empty_like(prev)
            row[:, 0] = prev[:, 0] + cost_x
            for j in range(1, width + 1):
                row[:, j] = np.minimum(
                    np.minimum(prev[:, j] + cost_x, row[:, j - 1] + self._b_indel[:, j - 1]),
                    prev[:, j - 1] + swap[:, j - 1],
                )
            prev = row
        distance = prev[np.arange(n), self._lengths]
        heavier = np.maximum(self.weights, weight)
        return np.divide(distance, heavier, out=np.zeros(n), where=heavier > 0)
