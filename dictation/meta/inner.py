"""Batches, the teacher-forced loss and the Meta-SGD inner loop, shared by user adaptation,
meta-training, the plain fine-tuning baseline and evaluation.

A batch keeps the output of the frozen lower encoder (stem + blocks without adaptation
parameters), computed once: every inner step only re-runs the adapted upper blocks and
the decoder. When the convolutional stem is adapted (`adapt_stem`), nothing is frozen
and the batch keeps the padded log-mel instead. Utterances are padded to the batch's
longest with key masks, which gives the same result as running each one unpadded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from dictation.decoding import EOT, PROMPT, TextTokenizer
from dictation.features import LogMel
from dictation.model.whisper import Whisper

IGNORE = -100
MAX_TARGET_TOKENS = 200


@dataclass
class Batch:
    lower: torch.Tensor        # (B, T, d) frozen lower-encoder output; (B, 80, 2T) log-mel with adapt_stem
    frame_mask: torch.Tensor   # (B, T) True for real frames
    tokens_in: torch.Tensor    # (B, n) prompt + text tokens
    targets: torch.Tensor      # (B, n) text tokens + EOT, IGNORE on prompt/padding
    texts: list[str]
    mel_mask: torch.Tensor | None = None  # (B, 2T) real log-mel frames, with adapt_stem

    def __len__(self) -> int:
        return len(self.texts)


def make_batch(model: Whisper, tokenizer: TextTokenizer, items: list[tuple[np.ndarray, str]],
               device: torch.device | str = "cpu", front_end: LogMel | None = None) -> Batch:
    """Encode (16 kHz audio, transcript) pairs into a padded, masked batch."""
    front_end = (front_end or LogMel()).to(device)
    mels = []
    with torch.no_grad():
        for audio, _ in items:
            wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(device)[None]
            mels.append(model.pad_input(front_end(wav))[0])
    frames = max(m.shape[-1] for m in mels)
    mel = torch.zeros(len(mels), mels[0].shape[0], frames, device=device)
    for i, m in enumerate(mels):
        mel[i, :, : m.shape[-1]] = m
    enc_len = torch.tensor([(m.shape[-1] + 1) // 2 for m in mels], device=device)
    t_enc = (frames + 1) // 2
    frame_mask = torch.arange(t_enc, device=device)[None, :] < enc_len[:, None]
    mel_len = torch.tensor([m.shape[-1] for m in mels], device=device)
    mel_mask = (torch.arange(frames, device=device)[None, :] < mel_len[:, None]).float()
    if model.cfg.adapt_stem:
        lower = mel
    else:
        with torch.no_grad():
            lower = model.encoder.lower(mel, model.first_adapted_encoder_block(), frame_mask, mel_mask)
    seqs = [tokenizer.encode(text)[:MAX_TARGET_TOKENS] for _, text in items]
    n = len(PROMPT) + max(len(s) for s in seqs)
    tokens_in = torch.full((len(seqs), n), EOT, dtype=torch.long)
    targets = torch.full((len(seqs), n), IGNORE, dtype=torch.long)
    for i, s in enumerate(seqs):
        full = list(PROMPT) + s
        tokens_in[i, : len(full)] = torch.tensor(full)
        targets[i, len(PROMPT) - 1 : len(full)] = torch.tensor(s + [EOT])
    return Batch(lower, frame_mask, tokens_in.to(device), targets.to(device), [t for _, t in items],
                 mel_mask if model.cfg.adapt_stem else None)


def _upper_logits(model: Whisper, batch: Batch) -> torch.Tensor:
    x = model.encoder.embed(batch.lower, batch.mel_mask) if model.cfg.adapt_stem else batch.lower
    audio = model.encoder.run_blocks(x, model.first_adapted_encoder_block(), batch.frame_mask)
    logits, _ = model.decoder(batch.tokens_in, model.decoder.cross_kv(audio), cross_mask=batch.frame_mask)
    return logits


def batch_loss(model: Whisper, params: dict[str, torch.Tensor] | None, batch: Batch) -> torch.Tensor:
    """Mean token cross-entropy, with `params` (a subset of named parameters) swapped in."""
    logits = _functional_logits(model, params, batch) if params else _upper_logits(model, batch)
    return F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE)


class _Upper(torch.nn.Module):
    """Adapter so functional_call can run _upper_logits with swapped parameters."""

    def __init__(self, m: Whisper) -> None:
        super().__init__()
        self.m = m

    def forward(self, b: Batch) -> torch.Tensor:
        return _upper_logits(self.m, b)


def _functional_logits(model: Whisper, params: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
    """_upper_logits with some parameters replaced (fast weights), without mutating the model."""
    return functional_call(_Upper(model), {"m." + k: v for k, v in params.items()}, (batch,))


def inner_loop(
    model: Whisper,
    params: dict[str, torch.Tensor],
    lrs: dict[str, torch.Tensor],
    batch: Batch,
    steps: int,
    max_grad_norm: float = 5.0,
    on_step=None,
    second_order: bool = False,
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Meta-SGD steps  p <- p - lr_p * grad_p  on `batch`.

    By default the gradients are detached (first-order), but the update stays
    differentiable in the initial values and in the learning rates: a loss on the returned
    fast weights back-propagates to both, which is first-order Meta-SGD. `second_order`
    keeps the inner gradients in the graph (full MAML: the outer gradient also sees how
    each step's gradient depends on the values before it), at roughly three times the
    cost of a step; the clipping scale stays a constant.
    """
    fast = dict(params)
    losses = []
    for step in range(steps):
        loss = batch_loss(model, fast, batch)
        grads = torch.autograd.grad(loss, list(fast.values()), allow_unused=True, create_graph=second_order)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(fast.values(), grads)]
        norm = torch.sqrt(sum((g.detach() ** 2).sum() for g in grads))
        scale = min(1.0, max_grad_norm / (float(norm) + 1e-6))
        if not second_order:
            grads = [g.detach() for g in grads]
        fast = {n: p - lrs[n].clamp(min=0) * (g * scale) for (n, p), g in zip(fast.items(), grads)}
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step + 1, float(loss))
    return fast, losses
