"""Tokenizer and greedy decoding rules shared by the torch model and the ONNX runtime.

numpy only (no torch): the dictation path imports this. The decoding loop is written
once, over a `step` callable that feeds new tokens to some decoder (torch or
onnxruntime) and returns the logits of the last position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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


@dataclass
class DecodingRules:
    """Token masks applied to the logits at every step / at the first step."""

    suppress: np.ndarray        # bool (vocab,)
    suppress_begin: np.ndarray  # bool (vocab,)

    @classmethod
    def from_config(cls, config_json: Path, n_vocab: int = N_VOCAB) -> "DecodingRules":
        cfg = json.loads(Path(config_json).read_text())
        suppress = np.zeros(n_vocab, dtype=bool)
        suppress[cfg.get("suppress_ids", [])] = True
        suppress[SOT:] = True  # no specials or timestamps in plain dictation
        begin = suppress.copy()
        begin[cfg.get("suppress_ids_begin", [220, EOT])] = True
        return cls(suppress=suppress, suppress_begin=begin)


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


def token_budget(audio_seconds: float) -> int:
    return int(min(MAX_TOKENS, TOKENS_PER_SECOND * audio_seconds + TOKENS_SLACK))


def greedy_decode(
    step: Callable[[list[int]], np.ndarray],
    rules: DecodingRules,
    audio_seconds: float,
    max_tokens: int | None = None,
) -> list[int]:
    """Greedy decoding with runaway guards; returns the generated text tokens (no EOT)."""
    budget = max_tokens if max_tokens is not None else token_budget(audio_seconds)
    logits = step(list(PROMPT))
    out: list[int] = []
    while len(out) < budget:
        mask = rules.suppress_begin if not out else rules.suppress
        token = int(np.argmax(np.where(mask, -np.inf, logits)))
        if token == EOT:
            break
        out.append(token)
        cut = repetition_start(out)
        if cut is not None:
            return out[:cut]
        logits = step([token])
    return out


SHORTLIST = 32        # at most this many tokens are rescored exactly per step
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


def rescore_shortlist(approx: np.ndarray, hidden: np.ndarray, embedding: np.ndarray,
                      k: int = SHORTLIST, margin: float = RESCORE_MARGIN) -> np.ndarray:
    """Exact logits for the `shortlist` of an approximate (int8) output projection.

    `approx` (vocab,) comes from the int8 projection, `hidden` (d,) is the final-LayerNorm
    output and `embedding` (vocab, d) the tied float16 embedding. The shortlisted entries
    are replaced by hidden . embedding[token] in float32, so greedy decoding picks what
    the float projection picks. Returns a new array.
    """
    out = np.array(approx, dtype=np.float32, copy=True)
    cand = shortlist(out, k, margin)
    out[cand] = embedding[cand].astype(np.float32) @ hidden.astype(np.float32)
    return out
