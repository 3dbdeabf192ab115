"""Tokenizer, decoding rules and decoding loops shared by the torch model and the ONNX runtime.

numpy only (no torch): the dictation path imports this. Each decoding loop (greedy,
beam search) is written once, over a `step` callable that feeds new tokens to some
decoder (torch or onnxruntime) and returns the logits of the last position.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

EOT = 50256
SOT = 50257
NO_TIMESTAMPS = 50362
PROMPT = (SOT, NO_TIMESTAMPS)
N_VOCAB = 51864

# Runaway guards: dictated speech runs at ~2-4 tokens per second; allow generous slack.
TOKENS_PER_SECOND = 8.0
TOKENS_SLACK = 12
MAX_TOKENS = 440  # text context is 448 positions including the prompt

# Beam width of the app, the evaluation and the adaptation check; 1 means greedy. On 192
# meta-validation utterances (`python benchmarks/decoding.py`, the app's int8 runtime):
# WER 14.9 % greedy, 13.7 % beam 2, 13.3 % beam 4, 12.7 % beam 6, at 91 / 129 / 163 / 196 ms
# per utterance (before the top-k change). 4 leaves the 5 s latency bar (150 ms) some
# margin; the model card has the held-out figures.
DEFAULT_BEAM = 4


class TextTokenizer:
    """Whisper's byte-level BPE (the `tokenizers` library, no torch)."""

    def __init__(self, tokenizer_json: Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(tokenizer_json))

    def encode(self, text: str) -> list[int]:
        """Token ids of a transcript as Whisper writes it (leading space, no specials)."""
        return self._tok.encode(" " + text.strip(), add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode([i for i in ids if i < EOT], skip_special_tokens=True).strip()

    def pieces(self) -> list[str]:
        """Each token's text by id, as the byte-level BPE spells it ("\u0120" a space)."""
        vocab = self._tok.get_vocab()
        out = [""] * (max(vocab.values()) + 1)
        for text, index in vocab.items():
            out[index] = text
        return out


@dataclass
class DecodingRules:
    """Token masks applied to the logits at every step / at the first step."""

    suppress: np.ndarray  # bool (vocab,)
    suppress_begin: np.ndarray  # bool (vocab,)

    @classmethod
    def from_config(cls, config_json: Path, n_vocab: int = N_VOCAB) -> DecodingRules:
        cfg = json.loads(Path(config_json).read_text())
        suppress = np.zeros(n_vocab, dtype=bool)
        suppress[cfg.get("suppress_ids", [])] = True
        suppress[SOT:] = True  # no specials or timestamps in plain dictation
        begin = suppress.copy()
        begin[cfg.get("suppress_ids_begin", [220, EOT])] = True
        return cls(suppress=suppress, suppress_begin=begin)


class Bias(Protocol):
    """Contextual biasing of the next token (`dictation.app.vocabulary.PhraseBias`)."""

    def adjust(self, tokens: list[int], row: np.ndarray) -> np.ndarray:
        """`row` (the next token's log-probabilities or logits after the text `tokens`)
        with bounded bonuses added; the same array when nothing applies."""
        ...


def load_tokenizer_and_rules(model_dir: Path) -> tuple[TextTokenizer, DecodingRules]:
    """The tokenizer and decoding rules of a model folder: an exported model (the app's,
    a profile's) or the Whisper backbone, both holding `tokenizer.json` and `config.json`."""
    model_dir = Path(model_dir)
    return TextTokenizer(model_dir / "tokenizer.json"), DecodingRules.from_config(model_dir / "config.json")


def repetition_start(tokens: list[int], max_period: int = 48) -> int | None:
    """Index where a loop starts if the tail repeats a period-p unit back to back.

    Short units (< 8 tokens) must occur 3 times ("very very" is real speech); a long
    unit repeated twice in a row is a decoder loop in practice.
    """
    n = len(tokens)
    for p in range(1, max_period + 1):
        need = p * (3 if p < 8 else 2)
        if n < need:
            continue
        tail = tokens[n - need :]
        if all(tail[i] == tail[i % p] for i in range(need)):
            start = n - need
            while start > 0 and tokens[start - 1] == tokens[start - 1 + p]:
                start -= 1  # extend the periodic region back to where the loop began
            return start + p  # keep one copy of the repeated unit
    return None


@dataclass
class DecodeScore:
    """What the model thought of the text it chose: the log-probabilities of the chosen
    tokens (the end of text included), summed, and how many there were. A decoding
    loop given one fills it in; `confidence` is the mean token probability."""

    logprob: float = 0.0
    tokens: int = 0

    def add(self, logprob: float, tokens: int = 1) -> None:
        self.logprob += float(logprob)
        self.tokens += int(tokens)

    @property
    def confidence(self) -> float | None:
        """exp(mean log-probability per token), in (0, 1]; None when nothing was scored."""
        if self.tokens <= 0 or not np.isfinite(self.logprob):
            return None
        return float(np.exp(self.logprob / self.tokens))


def _token_logprob(logits: np.ndarray, token: int) -> float:
    """log-softmax of `logits` at `token` (masked entries are -inf)."""
    top = float(np.max(logits))
    return float(logits[token]) - (top + float(np.log(np.sum(np.exp(logits - top)))))


def token_budget(audio_seconds: float) -> int:
    return int(min(MAX_TOKENS, TOKENS_PER_SECOND * audio_seconds + TOKENS_SLACK))


def greedy_decode(
    step: Callable[[list[int]], np.ndarray],
    rules: DecodingRules,
    audio_seconds: float,
    max_tokens: int | None = None,
    bias: Bias | None = None,
    scored: DecodeScore | None = None,
) -> list[int]:
    """Greedy decoding with runaway guards; returns the generated text tokens (no EOT).
    `bias`: bonuses added to the (masked) logits before the argmax. `scored`: given the
    model's log-probability of each chosen token (before any bias)."""
    budget = max_tokens if max_tokens is not None else token_budget(audio_seconds)
    logits = step(list(PROMPT))
    out: list[int] = []
    while len(out) < budget:
        mask = rules.suppress_begin if not out else rules.suppress
        plain = np.where(mask, -np.inf, logits)
        masked = bias.adjust(out, plain) if bias is not None else plain
        token = int(np.argmax(masked))
        if scored is not None:
            scored.add(_token_logprob(plain, token))
        if token == EOT:
            break
        out.append(token)
        cut = repetition_start(out)
        if cut is not None:
            return out[:cut]
        logits = step([token])
    return out


def check_beam(beam: object) -> int:
    """A beam width as an int >= 1 (1 = greedy); ValueError otherwise."""
    try:
        value = int(beam)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueError(f"beam must be a whole number of at least 1, not {beam!r}") from None
    if value < 1 or (isinstance(beam, float) and beam != value):
        raise ValueError(f"beam must be a whole number of at least 1, not {beam!r}")
    return value


def beam_width(text: str) -> int:
    """argparse type for --beam: check_beam's message as a usage error."""
    import argparse

    try:
        return check_beam(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def top_k(row: np.ndarray, k: int, near: float = 12.0) -> np.ndarray:
    """Indices of the `k` largest entries of `row` (any order; ties broken arbitrarily).

    Selecting among the entries within `near` of the maximum first: a comparison pass,
    where a partition of the whole 51,864-token vocabulary costs ~0.4 ms per call on 2
    cores, and a beam step makes two per hypothesis. Falls back to the whole row when
    fewer than `k` entries are that near, so the result is always the exact top k.
    """
    k = min(k, row.size)
    near_idx = np.flatnonzero(row >= row.max() - near)
    if near_idx.size >= k:
        return near_idx[np.argpartition(row[near_idx], -k)[-k:]]
    return np.argpartition(row, -k)[-k:]


BEAM_CANDIDATES = 1  # extra candidates per hypothesis, so an end-of-text does not starve the beam


def _log_softmax(rows: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (n, vocab) logits (float32; -inf stays -inf)."""
    top = rows.max(axis=1, keepdims=True)
    return rows - (top + np.log(np.exp(rows - top).sum(axis=1, keepdims=True)))


def beam_decode(
    step: Callable[[list[int], list[list[int]]], np.ndarray],
    rules: DecodingRules,
    audio_seconds: float,
    beam: int = DEFAULT_BEAM,
    max_tokens: int | None = None,
    bias: Bias | None = None,
    scored: DecodeScore | None = None,
) -> list[int]:
    """Beam search with the greedy decoder's runaway guards; returns the text tokens (no EOT).

    `step(parents, tokens)` continues hypothesis `parents[j]` of the previous call with
    `tokens[j]` (the first call: parents [0], the prompt) and returns the last-position
    logits, one row per continued hypothesis. The caller keeps the key/value cache and
    reorders it by `parents`, so every row of one call has the same length (one batch).

    Like Whisper's decoder: at each step the `beam` best continuations that do not end
    stay live; an end-of-text ranked above them finishes its hypothesis; the search stops
    when `beam` hypotheses have finished (or the token budget is spent), and the finished
    one with the best mean log-probability per token wins. A hypothesis that starts to
    loop (`repetition_start`) finishes there, cut back to one copy of the loop.
    `bias` adds its bonuses to each hypothesis's log-probabilities before the candidates
    are chosen (so a biased token far down the list can still enter the beam).
    `scored`: given the winner's summed log-probability over its tokens + 1 (the length
    its rank was judged by; bias bonuses included when `bias` is given).
    """
    beam = check_beam(beam)
    budget = max_tokens if max_tokens is not None else token_budget(audio_seconds)
    logits = np.asarray(step([0], [list(PROMPT)]))
    live: list[tuple[list[int], float]] = [([], 0.0)]
    finished: list[tuple[list[int], float]] = []
    while live and len(finished) < beam:
        candidates: list[tuple[float, int, int]] = []
        mask = rules.suppress_begin if not live[0][0] else rules.suppress  # all live have one length
        logps = _log_softmax(np.where(mask, -np.inf, np.asarray(logits, dtype=np.float32)))
        if bias is not None:
            logps = np.stack([bias.adjust(tokens, logps[i]) for i, (tokens, _) in enumerate(live)])
        for i, (_tokens, score) in enumerate(live):
            logp = logps[i]
            for t in top_k(logp, beam + BEAM_CANDIDATES):
                if np.isfinite(logp[t]):
                    candidates.append((score + float(logp[t]), i, int(t)))
        candidates.sort(key=lambda c: -c[0])
        nxt: list[tuple[list[int], float, int]] = []
        for score, i, t in candidates:
            if len(nxt) == beam:
                break
            tokens = live[i][0]
            if t == EOT:
                finished.append((tokens, score))
                continue
            grown = tokens + [t]
            cut = repetition_start(grown)
            if cut is not None:
                finished.append((grown[:cut], score))
            elif len(grown) >= budget:
                finished.append((grown, score))
            else:
                nxt.append((grown, score, i))
        live = [(tokens, score) for tokens, score, _ in nxt]
        if live and len(finished) < beam:
            logits = np.asarray(step([i for _, _, i in nxt], [[tokens[-1]] for tokens, _, _ in nxt]))
    if not finished:  # every candidate was masked out: nothing decodable
        return []
    best, best_score = max(finished, key=lambda f: f[1] / max(1, len(f[0]) + 1))
    if scored is not None:
        scored.add(best_score, len(best) + 1)
    return best


SHORTLIST = 32  # at most this many tokens are rescored exactly per step
RESCORE_MARGIN = 2.0  # ... namely those whose int8 logit is within this of the int8 maximum


def shortlist(approx: np.ndarray, k: int = SHORTLIST, margin: float = RESCORE_MARGIN) -> np.ndarray:
    """Token ids to rescore: every token whose approximate logit is within `margin` of the
    approximate maximum, capped at the `k` best.

    If every approximate logit is within margin / 2 of its exact value, the exact argmax
    is in this set (it cannot be more than 2 x error below the approximate maximum); the
    export's parity check measures that error. The margin test costs a comparison, where
    a top-k selection over the vocabulary costs ~0.5 ms per step on 2 cores.
    """
    cand = np.flatnonzero(approx >= approx.max() - margin)
    if cand.size > k:
        cand = cand[np.argpartition(approx[cand], -k)[-k:]]
    return cand


def rescore_shortlist(
    approx: np.ndarray,
    hidden: np.ndarray,
    embedding: np.ndarray,
    k: int = SHORTLIST,
    margin: float = RESCORE_MARGIN,
    at_least: int = 0,
) -> np.ndarray:
    """Exact logits for the `shortlist` of an approximate (int8) output projection.

    `approx` (vocab,) comes from the int8 projection, `hidden` (d,) is the final-LayerNorm
    output and `embedding` (vocab, d) the tied float16 embedding. The shortlisted entries
    are replaced by hidden . embedding[token] in float32, so greedy decoding picks what
    the float projection picks. `at_least` more: the shortlist also holds the `at_least`
    best approximate tokens (a beam search ranks that many candidates per hypothesis, so
    each is scored exactly even when far below the best). Returns a new array.
    """
    out = np.array(approx, dtype=np.float32, copy=True)
    cand = shortlist(out, k, margin)
    if at_least > 0:
        cand = np.union1d(cand, top_k(out, at_least))
    out[cand] = embedding[cand].astype(np.float32) @ hidden.astype(np.float32)
    return out
