"""Transcript text: the target/display form, the WER normaliser, and WER/CER.

Targets are Whisper-style text (cased, punctuated, numbers as digits). Error rates are
computed on a normalised form so that casing, punctuation and "twenty one" vs "21" do
not count as errors; every WER figure in the project goes through `normalize_for_wer`.
"""

from __future__ import annotations

import re
import unicodedata

_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def clean_transcript(text: str) -> str:
    """Target/display form: NFKC, straight quotes, single spaces, no edge whitespace."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return re.sub(r"\s+", " ", text).strip()


_UNITS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {
    w: 10 * i
    for i, w in enumerate(["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"])
    if i >= 2
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_ORDINALS = {
    "first": "one",
    "second": "two",
    "third": "three",
    "fifth": "five",
    "eighth": "eight",
    "ninth": "nine",
    "twelfth": "twelve",
}


def _words_to_number(words: list[str]) -> int | None:
    """Value of a run of English number words ("two hundred and five"), or None."""
    total, current, seen = 0, 0, False
    for w in words:
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in _SCALES:
            total += max(current, 1) * _SCALES[w]
            current = 0
        elif w == "and" and seen:
            continue
        else:
            return None
        seen = True
    return total + current if seen else None


def _spoken_numbers_to_digits(tokens: list[str]) -> list[str]:
    number_words = set(_UNITS) | set(_TENS) | set(_SCALES)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] in number_words:
            j = i
            while j < len(tokens) and (
                tokens[j] in number_words
                or (tokens[j] == "and" and j + 1 < len(tokens) and tokens[j + 1] in number_words)
            ):
                j += 1
            run = tokens[i:j]
            value = _words_to_number(run)
            # Digit strings read one by one ("four two") stay a digit string, as written.
            if value is not None and all(t in _UNITS for t in run) and len(run) > 1:
                out.append("".join(str(_UNITS[t]) for t in run))
            elif value is not None:
                out.append(str(value))
            else:
                out.extend(run)
            i = j
        else:
            out.append(tokens[i])
            i += 1
    return out


def normalize_for_wer(text: str) -> str:
    """Lowercase, no punctuation, number words as digits, single spaces."""
    text = clean_transcript(text).lower()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    text = re.sub(r"(\d)%", r"\1 percent", text)
    text = text.replace("&", " and ")
    text = re.sub(r"[-/]", " ", text)
    text = re.sub(r"[^\w\s'.]", " ", text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # keep decimal points only
    text = re.sub(r"'(?!\w)|(?<!\w)'", " ", text)  # quote marks, not apostrophes
    tokens = [_ORDINALS.get(t, t) for t in text.split()]
    return " ".join(_spoken_numbers_to_digits(tokens))


def edit_distance(ref: list, hyp: list) -> int:
    """Levenshtein distance between two sequences."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_errors(refs: list[str], hyps: list[str]) -> list[tuple[int, int]]:
    """Per utterance: (word errors, reference words) on normalised text."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    out = []
    for r, h in zip(refs, hyps):
        rw, hw = normalize_for_wer(r).split(), normalize_for_wer(h).split()
        out.append((edit_distance(rw, hw), len(rw)))
    return out


def wer(refs: list[str], hyps: list[str]) -> float:
    """Corpus word error rate (errors / reference words) on normalised text."""
    counts = word_errors(refs, hyps)
    return sum(e for e, _ in counts) / max(sum(w for _, w in counts), 1)


def cer(refs: list[str], hyps: list[str]) -> float:
    """Corpus character error rate on normalised text (spaces count as characters)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    errors = chars = 0
    for r, h in zip(refs, hyps):
        rc, hc = list(normalize_for_wer(r)), list(normalize_for_wer(h))
        errors += edit_distance(rc, hc)
        chars += len(rc)
    return errors / max(chars, 1)
