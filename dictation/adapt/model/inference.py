"""Torch-side transcription (reference for export parity, evaluation and adaptation checks)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from dictation.adapt.features import SAMPLE_RATE, LogMel
from dictation.adapt.model.whisper import Whisper
from dictation.app.decoding import DEFAULT_BEAM, DecodingRules, TextTokenizer, beam_decode, greedy_decode

STOCK_FRAMES = 3000  # stock Whisper input: 30 s of log-mel


def pad_features(mel: torch.Tensor, pad_to: int | None) -> torch.Tensor:
    """Zero-pad log-mel frames to `pad_to` (stock Whisper), or leave unpadded (None)."""
    if pad_to is None or mel.shape[-1] >= pad_to:
        return mel
    return F.pad(mel, (0, pad_to - mel.shape[-1]))


@torch.no_grad()
def transcribe_tokens(
    model: Whisper,
    audio: np.ndarray,
    rules: DecodingRules,
    pad_to: int | None = None,
    front_end: LogMel | None = None,
    beam: int = DEFAULT_BEAM,
) -> list[int]:
    """Token ids for one 16 kHz mono float32 utterance: greedy (beam 1) or beam search.

    pad_to=None feeds the model's own input (unpadded + its configured trailing frames);
    pad_to=STOCK_FRAMES reproduces stock Whisper's 30 s padded input.
    """
    front_end = front_end or LogMel()
    wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    mel = front_end(wav)
    mel = model.pad_input(mel) if pad_to is None else pad_features(mel, pad_to)
    cross = model.decoder.cross_kv(model.encoder(mel))
    past: list | None = None

    def step(tokens: list[int]) -> np.ndarray:
        nonlocal past
        logits, past = model.decoder(torch.tensor([tokens]), cross, past)
        return logits[0, -1].numpy()

    seconds = len(audio) / SAMPLE_RATE
    if beam == 1:
        return greedy_decode(step, rules, audio_seconds=seconds)

    def beam_step(parents: list[int], tokens: list[list[int]]) -> np.ndarray:
        nonlocal past
        if past is not None:
            index = torch.tensor(parents)
            past = [(k.index_select(0, index), v.index_select(0, index)) for k, v in past]
        logits, past = model.decoder(torch.tensor(tokens), cross, past)  # cross broadcasts over rows
        return logits[:, -1].numpy()

    return beam_decode(beam_step, rules, audio_seconds=seconds, beam=beam)


def transcribe(
    model: Whisper,
    audio: np.ndarray,
    rules: DecodingRules,
    tokenizer: TextTokenizer,
    pad_to: int | None = None,
    beam: int = DEFAULT_BEAM,
    front_end: LogMel | None = None,
) -> str:
    return tokenizer.decode(transcribe_tokens(model, audio, rules, pad_to, front_end=front_end, beam=beam))
