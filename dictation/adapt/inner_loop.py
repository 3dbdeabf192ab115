"""Batches, the teacher-forced loss and the Meta-SGD inner loop, shared by user adaptation,
meta-training, the plain fine-tuning baseline and evaluation.

A batch keeps the output of the frozen lower encoder (stem + blocks without adaptation
parameters), computed once: every inner step only re-runs the adapted upper blocks and
the decoder. When the convolutional stem is adapted (`adapt_stem`), nothing is frozen
and the batch keeps the padded log-mel instead. Utterances are padded to the batch's
longest with key masks, which gives the same result as running each one unpadded.

On a CPU a set of utterances is better cut into a few small batches of similar length
(`make_batches`): less padding and smaller activations. The losses and gradients over
such a list are token-weighted sums of the batches' own, so they equal those of one
batch of everything (checked by a test); on 2 cores, 5 steps on 30 phrases took 15.9 s
in batches of 5 against 20.9 s in one (`benchmarks/adaptation.py`; model card,
"User-time protocol").
"""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from dictation.adapt.features import LogMel
from dictation.adapt.model.whisper import Whisper
from dictation.app.decoding import EOT, PROMPT, TextTokenizer

IGNORE = -100
MAX_TARGET_TOKENS = 200


@dataclass
class Batch:
    lower: torch.Tensor  # (B, T, d) frozen lower-encoder output; (B, 80, 2T) log-mel with adapt_stem
    frame_mask: torch.Tensor  # (B, T) True for real frames
    tokens_in: torch.Tensor  # (B, n) prompt + text tokens
    targets: torch.Tensor  # (B, n) text tokens + EOT, IGNORE on prompt/padding
    texts: list[str]
    mel_mask: torch.Tensor | None = None  # (B, 2T) real log-mel frames, with adapt_stem

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_tokens(self) -> int:
        """Target tokens the loss averages over."""
        return int((self.targets != IGNORE).sum())


Batches = Batch | Sequence[Batch]
# Utterances per batch in `make_batches`: of 5, 10, 15 and 30, 5 was the fastest per step
# on one validation speaker's 30 phrases (2 cores; 10 within 10 %, 30 twice as slow).
CPU_CHUNK = 5


def make_batches(
    model: Whisper,
    tokenizer: TextTokenizer,
    items: list[tuple[np.ndarray, str]],
    device: torch.device | str = "cpu",
    chunk: int | None = None,
    front_end: LogMel | None = None,
) -> list[Batch]:
    """`items` sorted by length and cut into batches of at most `chunk` utterances
    (default: `CPU_CHUNK` on a CPU; all in one batch on a GPU, which small batches leave idle)."""
    if chunk is None:
        chunk = max(1, len(items)) if torch.device(device).type == "cuda" else CPU_CHUNK
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
    ordered = [items[i] for i in order]
    return [
        make_batch(model, tokenizer, ordered[i : i + chunk], device, front_end) for i in range(0, len(ordered), chunk)
    ]


def make_batch(
    model: Whisper,
    tokenizer: TextTokenizer,
    items: list[tuple[np.ndarray, str]],
    device: torch.device | str = "cpu",
    front_end: LogMel | None = None,
) -> Batch:
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
    return Batch(
        lower,
        frame_mask,
        tokens_in.to(device),
        targets.to(device),
        [t for _, t in items],
        mel_mask if model.cfg.adapt_stem else None,
    )


def _upper_logits(model: Whisper, batch: Batch) -> torch.Tensor:
    x = model.encoder.embed(batch.lower, batch.mel_mask) if model.cfg.adapt_stem else batch.lower
    audio = model.encoder.run_blocks(x, model.first_adapted_encoder_block(), batch.frame_mask)
    logits, _ = model.decoder(batch.tokens_in, model.decoder.cross_kv(audio), cross_mask=batch.frame_mask)
    return logits


def batch_loss(model: Whisper, params: dict[str, torch.Tensor] | None, batch: Batches) -> torch.Tensor:
    """Mean token cross-entropy, with `params` (a subset of named parameters) swapped in.

    Over a list of batches: the mean over all their tokens (each batch's mean weighted by
    its share of the tokens)."""
    if not isinstance(batch, Batch):
        total = sum(b.n_tokens for b in batch)
        return functools.reduce(operator.add, (batch_loss(model, params, b) * (b.n_tokens / total) for b in batch))
    logits = _functional_logits(model, params, batch) if params else _upper_logits(model, batch)
    return F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE)


def _loss_and_grads(
    model: Whisper, fast: dict[str, torch.Tensor], batch: Batches, create_graph: bool, precision: str = "float32"
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """batch_loss and its gradient in `fast`; over a list, one backward pass per batch (so
    only one batch's activations are alive at a time), summed with the token weights. The
    forward passes run under `autocast_for(precision)`, the backward passes outside it (as
    torch advises; they follow the forward's dtypes); the loss (autocast computes it in
    float32) and the gradients come back in the parameters' own dtype."""
    batches = [batch] if isinstance(batch, Batch) else list(batch)
    total = sum(b.n_tokens for b in batches)
    values = list(fast.values())
    loss_sum: torch.Tensor | None = None
    grad_sum: list[torch.Tensor] | None = None
    for b in batches:
        with autocast_for(precision, b.lower.device):
            loss = batch_loss(model, fast, b) * (b.n_tokens / total if len(batches) > 1 else 1.0)
        raw = torch.autograd.grad(loss, values, allow_unused=True, create_graph=create_graph)
        grads = [torch.zeros_like(p) if g is None else g.to(p.dtype) for p, g in zip(values, raw)]
        loss = loss if create_graph else loss.detach()
        loss_sum = loss if loss_sum is None else loss_sum + loss
        grad_sum = grads if grad_sum is None else [a + g for a, g in zip(grad_sum, grads)]
    assert loss_sum is not None and grad_sum is not None, "no batches"
    return loss_sum, grad_sum


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


PRECISIONS = ("float32", "bfloat16", "auto")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 matrix products natively (AVX512-BF16 or AMX),
    where bfloat16 autocast pays (0.59x the float32 adaptation time on this project's
    CPU); without it bfloat16 is emulated and slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """'auto': bfloat16 on a CPU with native bfloat16, else float32 (CUDA steps are
    already fast; meta-training keeps float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != "auto":
        return precision
    return "bfloat16" if torch.device(device).type == "cpu" and cpu_has_native_bf16() else "float32"


def autocast_for(precision: str, device: torch.device | str = "cpu") -> contextlib.AbstractContextManager:
    """The context the inner loop's forward and backward passes run in: bfloat16 autocast
    (matrix products in bfloat16, losses, norms and the parameters themselves in float32)
    or nothing."""
    resolved = resolve_precision(precision, device)
    if resolved == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def inner_loop(
    model: Whisper,
    params: dict[str, torch.Tensor],
    lrs: dict[str, torch.Tensor],
    batch: Batches,
    steps: int,
    max_grad_norm: float = 5.0,
    on_step=None,
    second_order: bool = False,
    precision: str = "float32",
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Meta-SGD steps  p <- p - lr_p * grad_p  on `batch`.

    By default the gradients are detached (first-order), but the update stays
    differentiable in the initial values and in the learning rates: a loss on the returned
    fast weights back-propagates to both, which is first-order Meta-SGD. `second_order`
    keeps the inner gradients in the graph (full MAML: the outer gradient also sees how
    each step's gradient depends on the values before it), at roughly three times the
    cost of a step; the clipping scale stays a constant. `batch` may be a list of batches
    (`make_batches`): the same steps, computed a batch at a time. `precision` "bfloat16"
    (or "auto" on a CPU with native bfloat16) runs the passes under bfloat16 autocast: on
    this project's CPU about half the time per step, with an update whose direction
    matches float32's (cosine 0.9998 over 2 steps on 30 phrases; model card). The
    parameters, the loss and the update stay float32.
    """
    fast = dict(params)
    losses = []
    resolve_precision(precision)  # a bad name fails before any work
    for step in range(steps):
        loss, grads = _loss_and_grads(model, fast, batch, second_order, precision)
        norm = torch.sqrt(functools.reduce(operator.add, ((g.detach() ** 2).sum() for g in grads)))
        scale = min(1.0, max_grad_norm / (float(norm) + 1e-6))
        if not second_order:
            grads = [g.detach() for g in grads]
        fast = {n: p - lrs[n].clamp(min=0) * (g * scale) for (n, p), g in zip(fast.items(), grads)}
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step + 1, float(loss))
    return fast, losses
