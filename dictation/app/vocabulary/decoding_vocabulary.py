"""A profile's vocabulary as the runtime uses it (`runtime.VocabularyHook`).

Set on a transcriber (``transcriber.vocabulary = DecodingVocabulary(entries)``), it
1. biases the beam search toward the phrases' tokens (`trie.PhraseBias`),
2. optionally puts the phrases in the decoder's previous-text prompt, and
3. repairs words that sound like a phrase the bias missed, where the decoder agrees
   (`repair.PhoneticRepair`; with the bias and its verification only), and
4. writes the entries' written forms into the text (`rewrite.TextRewriter`).
Which of 1 and 2 are on is `mode`; `DEFAULT_MODE` is the measured choice
(`python benchmarks/vocabulary.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from dictation.app.vocabulary.entries import VocabularyEntry
from dictation.app.vocabulary.repair import ForcedScore, PhoneticRepair
from dictation.app.vocabulary.rewrite import TextRewriter
from dictation.app.vocabulary.trie import BiasWeights, PhraseBias, PhraseTrie
from dictation.app.vocabulary.verify import UNSURE_LOGP, Recorder, merge_words, word_confidences

MODES = ("bias", "prompt", "both", "off")
# `python benchmarks/vocabulary.py` (20 misspelled words x 4 espeak-ng/flite voices, beam 4):
# words right off 5 %, bias 76 %, prompt 57 %, both 76 %; WER of 80 plain sentences 2.35 %
# off and bias, 2.13 % prompt, 2.24 % both. The prompt raised WER on real long recordings
# (benchmarks/long_dictation.py), so the bias alone is the default. With the word-end rule
# (`trie`): bias 78 % (`--set heldout`, 20 other words: off 2 %, bias 74 %), WER unchanged.
DEFAULT_MODE = "bias"
PROMPT_HEAD = ""  # text before the list of phrases in the prompt


def spoken_forms(entry: VocabularyEntry) -> list[str]:
    """What the recogniser may write for an entry: the phrase and its sounds-like spelling,
    each also with a capital first letter (the start of a sentence)."""
    forms = []
    for form in (entry.phrase, entry.sounds_like):
        if form:
            forms += [form, form[:1].upper() + form[1:]]
    return list(dict.fromkeys(forms))


def word_tail_mask(tokenizer: Any) -> np.ndarray | None:
    """Which tokens continue the word before them (their text starts with a letter or
    digit, no space); None for a tokenizer that cannot list its tokens."""
    pieces = getattr(tokenizer, "pieces", None)
    if pieces is None:
        return None
    texts = pieces()
    mask = np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        # Byte-level BPE writes a space, tab or control byte as a character from U+0100 on.
        mask[i] = bool(text) and text[0].isalnum() and not 0x100 <= ord(text[0]) <= 0x143
    return mask


def build_trie(entries: Iterable[VocabularyEntry], tokenizer: Any) -> PhraseTrie:
    """The token trie of every spoken form, as Whisper writes a word (after a space)."""
    return PhraseTrie(tokenizer.encode(form) for entry in entries for form in spoken_forms(entry))


class DecodingVocabulary:
    """The hook a `Transcriber` calls (prompt, bias, rewrite); immutable once made."""

    def __init__(
        self,
        entries: Iterable[VocabularyEntry],
        mode: str = DEFAULT_MODE,
        weights: BiasWeights | None = None,
        verify: bool = True,
        unsure: float = UNSURE_LOGP,
        repair: PhoneticRepair | bool = True,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"vocabulary mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.entries = list(entries)
        self.mode, self.weights, self.verify = mode, weights or BiasWeights(), verify
        self.unsure = unsure  # how unsure the plain words a phrase replaces must have been
        self.rewriter = TextRewriter(self.entries)
        # Sound-alike words the bias missed (`repair`); only with verify (it needs the scores).
        self.repair: PhoneticRepair | None = None
        if verify and repair:
            self.repair = PhoneticRepair(self.entries) if repair is True else repair
        self._bias: tuple[int, PhraseBias] | None = None  # (id of its tokenizer, bias)
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def rewrite(self, text: str) -> str:
        return self.rewriter(text)

    def prompt(self) -> str:
        if self.mode not in ("prompt", "both") or not self.entries:
            return ""
        return PROMPT_HEAD + ", ".join(e.phrase for e in self.entries) + "."

    def bias(self, tokenizer: Any) -> PhraseBias | None:
        """The bias over this tokenizer's tokens (built once), or None when off or empty."""
        if self.mode not in ("bias", "both") or not self.entries:
            return None
        with self._lock:
            if self._bias is None or self._bias[0] != id(tokenizer):
                trie = build_trie(self.entries, tokenizer)
                self._bias = (id(tokenizer), PhraseBias(trie, self.weights, word_tail_mask(tokenizer)))
            return self._bias[1]

    def decode(self, run: Callable[[Any], list[int]], tokenizer: Any) -> tuple[list[int], str]:
        """Tokens and written text of one utterance; `run(bias)` decodes it with a bias
        (None: plain). Biased decoding is verified against the plain one (`verify`), then
        repaired (`repair`: a rival phrase contests a biased one, sound-alikes are scored)."""
        bias = self.bias(tokenizer)
        if bias is None:
            tokens = run(None)
            return tokens, self.rewrite(tokenizer.decode(tokens))
        if not self.verify:
            tokens = run(bias)
            return tokens, self.rewrite(tokenizer.decode(tokens))
        if self.repair:
            self.repair.last = []
        recorder = Recorder(bias)
        plain = run(recorder)
        words = word_confidences(plain, recorder.token_logps(plain), tokenizer)
        logp: float | None = recorder.text_logp(plain)

        def score(candidate: str) -> float | None:
            forced = ForcedScore(tokenizer.encode(candidate))
            run(forced)
            return forced.total

        if recorder.phrase_possible:
            biased = run(bias)
            if biased != plain:
                forms = [form for entry in self.entries for form in spoken_forms(entry)]
                merged, regions = merge_words(words, tokenizer.decode(biased), forms, self.unsure)
                if regions:
                    words, logp = self.repair.contest(merged, regions, words, score) if self.repair else (merged, None)
        text = self.repair(words, score, logp) if self.repair else " ".join(w for w, _ in words)
        if text != tokenizer.decode(plain):
            plain = tokenizer.encode(text)
        return plain, self.rewrite(text)
