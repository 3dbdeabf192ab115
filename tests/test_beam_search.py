"""Beam search (dictation.app.decoding.beam_decode) on scripted decoders: numpy only, no model."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from dictation.app.decoding import (
    EOT,
    N_VOCAB,
    PROMPT,
    DecodingRules,
    beam_decode,
    beam_width,
    check_beam,
    greedy_decode,
    repetition_start,
)

NO_RULES = DecodingRules(suppress=np.zeros(N_VOCAB, bool), suppress_begin=np.zeros(N_VOCAB, bool))
A, B, C, D = 400, 401, 402, 403


class ScriptedDecoder:
    """A decoder whose next-token distribution is a function of the text so far.

    It keeps one prefix per hypothesis, like a key/value cache, and checks the calling
    contract of `beam_decode`: parents index the previous call's rows, and every call
    feeds one token per row after the prompt.
    """

    def __init__(self, next_logits) -> None:
        self.next_logits = next_logits
        self.rows: list[list[int]] = []
        self.max_rows = 0

    def beam_step(self, parents: list[int], tokens: list[list[int]]) -> np.ndarray:
        if not self.rows:
            assert parents == [0] and tokens == [list(PROMPT)]
            self.rows = [[]]
        else:
            assert all(0 <= p < len(self.rows) for p in parents)
            assert all(len(t) == 1 for t in tokens)
            self.rows = [self.rows[p] + t for p, t in zip(parents, tokens)]
        self.max_rows = max(self.max_rows, len(self.rows))
        return np.stack([self.next_logits(r) for r in self.rows])

    def greedy_step(self, tokens: list[int]) -> np.ndarray:
        self.rows = [[]] if tokens == list(PROMPT) else [self.rows[0] + tokens]
        return self.next_logits(self.rows[0])


def distribution(probs: dict[int, float]) -> np.ndarray:
    logits = np.full(N_VOCAB, -np.inf, np.float32)  # impossible tokens are never candidates
    for token, p in probs.items():
        logits[token] = np.log(p)
    return logits


def garden_path(prefix: list[int]) -> np.ndarray:
    """A is the likelier first word, but every text through A is less likely than 'B.'"""
    table = {
        (): {A: 0.55, B: 0.45},
        (A,): {C: 0.35, D: 0.35, EOT: 0.3},
        (A, C): {EOT: 1.0},
        (A, D): {EOT: 1.0},
        (B,): {EOT: 0.95, C: 0.05},
    }
    return distribution(table.get(tuple(prefix), {EOT: 1.0}))


def test_beam_finds_the_likelier_text_that_greedy_misses():
    greedy = greedy_decode(ScriptedDecoder(garden_path).greedy_step, NO_RULES, audio_seconds=3.0)
    decoder = ScriptedDecoder(garden_path)
    beam = beam_decode(decoder.beam_step, NO_RULES, audio_seconds=3.0, beam=2)
    assert greedy[0] == A and len(greedy) == 2
    assert beam == [B]
    assert decoder.max_rows <= 2


def random_decoder(seed: int):
    """Deterministic random logits per prefix over a few tokens (EOT among them)."""

    def next_logits(prefix: list[int]) -> np.ndarray:
        rng = np.random.default_rng([seed, len(prefix), *prefix])
        logits = np.full(N_VOCAB, -30.0, np.float32)
        logits[[EOT, 500, 501, 502, 503]] = rng.normal(0, 2, 5)
        return logits

    return next_logits


@pytest.mark.parametrize("seed", range(8))
def test_beam_of_one_is_greedy(seed):
    greedy = greedy_decode(ScriptedDecoder(random_decoder(seed)).greedy_step, NO_RULES, audio_seconds=2.0)
    beam = beam_decode(ScriptedDecoder(random_decoder(seed)).beam_step, NO_RULES, audio_seconds=2.0, beam=1)
    assert beam == greedy


def small_language(seed: int):
    """Random next-token distributions over two words and EOT; EOT only after three words.
    The words differ by position (word i is 500 + 2i or 501 + 2i), so no text repeats."""

    def next_logits(prefix: list[int]) -> np.ndarray:
        if len(prefix) == 3:
            return distribution({EOT: 1.0})
        p = np.random.default_rng([seed, len(prefix), *prefix]).dirichlet([1.0, 1.0, 1.0])
        n = 2 * len(prefix)
        return distribution({500 + n: p[0], 501 + n: p[1], EOT: p[2]})

    return next_logits


def mean_logp(language, tokens: list[int]) -> float:
    """Mean log-probability per token of a text, its EOT included (the beam's ranking)."""
    total, prefix = 0.0, []
    for t in tokens + [EOT]:
        row = language(prefix).astype(np.float64)
        total += row[t] - (row.max() + np.log(np.exp(row - row.max()).sum()))
        prefix = prefix + [t]
    return total / (len(tokens) + 1)


@pytest.mark.parametrize("seed", range(6))
def test_a_beam_wider_than_the_language_finds_its_best_text(seed):
    """With room for every hypothesis, beam search is exhaustive: it must return the text
    with the best mean log-probability of all 15 texts (0 to 3 words)."""
    language = small_language(seed)
    texts = [[]] + [[a] for a in (500, 501)]
    texts += [[a, b] for a in (500, 501) for b in (502, 503)]
    texts += [[a, b, c] for a in (500, 501) for b in (502, 503) for c in (504, 505)]
    best = max(texts, key=lambda t: mean_logp(language, t))
    decoder = ScriptedDecoder(language)
    assert beam_decode(decoder.beam_step, NO_RULES, audio_seconds=30.0, beam=16) == best
    assert decoder.max_rows == 8  # all three-word prefixes were live at once, in one batch


def test_beam_keeps_the_runaway_guards_and_suppression():
    suppress = np.zeros(N_VOCAB, bool)
    suppress[600] = True
    rules = DecodingRules(suppress=suppress, suppress_begin=suppress.copy())

    def looping(prefix: list[int]) -> np.ndarray:
        logits = np.zeros(N_VOCAB, np.float32)
        logits[600] = 100  # suppressed: never emitted
        logits[300 + len(prefix) % 9] = 20  # cycles through 9 tokens, never ends
        logits[EOT] = -50
        return logits

    out = beam_decode(ScriptedDecoder(looping).beam_step, rules, audio_seconds=30.0, beam=4)
    assert 600 not in out and EOT not in out
    assert 9 <= len(out) < 20 and repetition_start(out) is None


def test_beam_stops_at_the_token_budget():
    def endless(prefix: list[int]) -> np.ndarray:
        logits = np.zeros(N_VOCAB, np.float32)
        logits[1000 + len(prefix)] = 30  # always a new token: no loop, never EOT
        logits[EOT] = -50
        return logits

    out = beam_decode(ScriptedDecoder(endless).beam_step, NO_RULES, audio_seconds=1.0, beam=3, max_tokens=7)
    assert len(out) == 7


def test_beam_width_must_be_a_whole_number_of_at_least_one():
    assert check_beam(3) == 3 and check_beam("2") == 2
    for bad in (0, -1, 2.5, "x", None):
        with pytest.raises(ValueError, match="beam must be"):
            check_beam(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="beam must be"):
        beam_width("0")
    with pytest.raises(ValueError):
        beam_decode(ScriptedDecoder(garden_path).beam_step, NO_RULES, audio_seconds=1.0, beam=0)
