"""Whisper encoder-decoder as the project's own torch modules, with LoRA hooks.

Pre-norm transformer blocks; the encoder takes log-mel of any length (unpadded input:
its sinusoidal positions are sliced to the sequence length); the decoder supports a
key/value cache so that each new token costs one position. Linear layers carry optional
LoRA factors (rank 0 = off) so that the adaptation parameters are ordinary named
parameters that `torch.func.functional_call` can swap for fast weights.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class WhisperConfig:
    n_mels: int = 80
    n_audio_ctx: int = 1500
    n_text_ctx: int = 448
    d_model: int = 384
    n_heads: int = 6
    n_audio_layers: int = 4
    n_text_layers: int = 4
    n_vocab: int = 51864
    lora_rank: int = 0
    lora_layers: tuple[int, ...] = ()  # decoder/encoder block indices that carry LoRA
    # LoRA rank of the encoder blocks (0 = lora_rank): the encoder is where adaptation
    # hears the voice, so it may get more inner capacity than the decoder.
    encoder_lora_rank: int = 0
    # Adapt the convolutional stem too (LoRA on both convolutions plus their biases): the
    # first layers that hear the voice, where speaker and channel differences enter.
    adapt_stem: bool = False
    # Zero log-mel frames appended to every (unpadded) input. Stock Whisper always saw 30 s
    # of padding; a second of it tells the decoder where the audio ends, which keeps it
    # from running on (see MODEL_CARD.md), at a fraction of the 30 s padding's cost.
    pad_frames: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lora_layers"] = list(self.lora_layers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> WhisperConfig:
        d = dict(d)
        d["lora_layers"] = tuple(d.get("lora_layers", ()))
        return cls(**d)


class LoRALinear(nn.Linear):
    """nn.Linear plus an optional low-rank update  W + (B @ A) * scale."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rank: int = 0) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.rank = rank
        if rank > 0:
            self.lora_a = nn.Parameter(torch.randn(rank, in_features) / math.sqrt(in_features))
            self.lora_b = nn.Parameter(torch.zeros(out_features, rank))
            self.scale = 1.0 / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        if self.rank > 0:
            y = y + F.linear(F.linear(x, self.lora_a), self.lora_b) * self.scale
        return y

    def merge_lora(self) -> None:
        """Fold the low-rank update into the weight (W += B @ A * scale) and drop it."""
        if self.rank > 0:
            with torch.no_grad():
                self.weight += (self.lora_b @ self.lora_a) * self.scale
            del self.lora_a, self.lora_b
            self.rank = 0


class LoRAConv1d(nn.Conv1d):
    """nn.Conv1d plus an optional low-rank update of its kernel viewed as (out, in * width)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, rank: int = 0
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        self.rank = rank
        if rank > 0:
            fan_in = in_channels * kernel_size
            self.lora_a = nn.Parameter(torch.randn(rank, fan_in) / math.sqrt(fan_in))
            self.lora_b = nn.Parameter(torch.zeros(out_channels, rank))
            self.scale = 1.0 / rank

    def kernel(self) -> torch.Tensor:
        if self.rank == 0:
            return self.weight
        return self.weight + ((self.lora_b @ self.lora_a) * self.scale).view_as(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.kernel(), self.bias, self.stride, self.padding)

    def merge_lora(self) -> None:
        """Fold the low-rank update into the kernel and drop it."""
        if self.rank > 0:
            with torch.no_grad():
                self.weight.copy_(self.kernel())
            del self.lora_a, self.lora_b
            self.rank = 0


def merged_copy(model: Whisper) -> Whisper:
    """A copy of `model` with every LoRA update folded into its weights: the same function
    with two small matrix products fewer per adapted layer (for export and inference)."""
    import copy

    out = copy.deepcopy(model)
    for m in out.modules():
        if isinstance(m, (LoRALinear, LoRAConv1d)):
            m.merge_lora()
    return out


class MultiHeadAttention(nn.Module):
    def __init__(self, d: int, n_heads: int, lora_rank: int = 0) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.query = LoRALinear(d, d, rank=lora_rank)
        self.key = nn.Linear(d, d, bias=False)
        self.value = LoRALinear(d, d, rank=lora_rank)
        self.out = nn.Linear(d, d)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        return x.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, key_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scaled dot-product attention; key_mask (batch, keys) is True where a key is real."""
        qh, kh, vh = self.split(q), self.split(k), self.split(v)
        scale = (q.shape[-1] // self.n_heads) ** -0.25
        scores = (qh * scale) @ (kh * scale).transpose(-1, -2)
        if causal:
            tq, tk = q.shape[1], k.shape[1]
            # query i (absolute position tk - tq + i) may see keys up to that position
            mask = torch.ones(tq, tk, dtype=torch.bool, device=q.device).triu(tk - tq + 1)
            scores = scores.masked_fill(mask, float("-inf"))
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        w = scores.softmax(dim=-1)
        out = (w @ vh).transpose(1, 2).flatten(2)
        return self.out(out)


class Block(nn.Module):
    def __init__(self, d: int, n_heads: int, cross: bool, lora_rank: int = 0) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(d, n_heads, lora_rank)
        self.attn_ln = nn.LayerNorm(d)
        self.cross_attn = MultiHeadAttention(d, n_heads, lora_rank) if cross else None
        self.cross_attn_ln = nn.LayerNorm(d) if cross else None
        self.mlp = nn.Sequential(LoRALinear(d, 4 * d, rank=lora_rank), nn.GELU(), nn.Linear(4 * d, d))
        self.mlp_ln = nn.LayerNorm(d)

    def forward(
        self,
        x: torch.Tensor,
        cross_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        past_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        causal: bool = False,
        self_mask: torch.Tensor | None = None,
        cross_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h = self.attn_ln(x)
        q, k, v = self.attn.query(h), self.attn.key(h), self.attn.value(h)
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=1)
            v = torch.cat([past_kv[1], v], dim=1)
        x = x + self.attn.attend(q, k, v, causal, self_mask)
        if self.cross_attn is not None:
            assert cross_kv is not None and self.cross_attn_ln is not None
            h = self.cross_attn_ln(x)
            x = x + self.cross_attn.attend(self.cross_attn.query(h), cross_kv[0], cross_kv[1], False, cross_mask)
        x = x + self.mlp(self.mlp_ln(x))
        return x, (k, v)


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> torch.Tensor:
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class AudioEncoder(nn.Module):
    positional_embedding: torch.Tensor  # a buffer (not trained, not adapted)

    def __init__(self, cfg: WhisperConfig) -> None:
        super().__init__()
        d = cfg.d_model
        stem_rank = cfg.lora_rank if cfg.adapt_stem else 0
        self.conv1 = LoRAConv1d(cfg.n_mels, d, 3, padding=1, rank=stem_rank)
        self.conv2 = LoRAConv1d(d, d, 3, stride=2, padding=1, rank=stem_rank)
        self.register_buffer("positional_embedding", sinusoids(cfg.n_audio_ctx, d))
        self.blocks = nn.ModuleList(
            Block(
                d,
                cfg.n_heads,
                cross=False,
                lora_rank=(cfg.encoder_lora_rank or cfg.lora_rank) if i in cfg.lora_layers else 0,
            )
            for i in range(cfg.n_audio_layers)
        )
        self.ln_post = nn.LayerNorm(d)

    def embed(self, mel: torch.Tensor, mel_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Convolutional stem + positions: mel (batch, 80, frames) -> (batch, ceil(frames / 2), d).

        mel_mask (batch, frames) zeroes the first conv's output on padding, so that a padded
        batch item sees what it would see alone (the strided conv's own zero padding).
        """
        x = F.gelu(self.conv1(mel))
        if mel_mask is not None:
            x = x * mel_mask[:, None, :]
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        return x + self.positional_embedding[: x.shape[1]]

    def run_blocks(self, x: torch.Tensor, start: int = 0, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Blocks `start`.. plus the final norm (lets adaptation cache the frozen lower blocks)."""
        for block in self.blocks[start:]:
            x, _ = block(x, self_mask=mask)
        return self.ln_post(x)

    def lower(
        self, mel: torch.Tensor, end: int, mask: torch.Tensor | None = None, mel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Stem and blocks [0, end): the part that adaptation never changes when frozen."""
        x = self.embed(mel, mel_mask)
        for block in self.blocks[:end]:
            x, _ = block(x, self_mask=mask)
        return x

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (batch, 80, frames) -> (batch, ceil(frames / 2), d)."""
        return self.run_blocks(self.embed(mel))


class TextDecoder(nn.Module):
    def __init__(self, cfg: WhisperConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.token_embedding = nn.Embedding(cfg.n_vocab, d)
        self.positional_embedding = nn.Parameter(torch.zeros(cfg.n_text_ctx, d))
        # Decoder blocks are numbered after the encoder's in lora_layers (4..7 for tiny).
        self.blocks = nn.ModuleList(
            Block(
                d, cfg.n_heads, cross=True, lora_rank=cfg.lora_rank if cfg.n_audio_layers + i in cfg.lora_layers else 0
            )
            for i in range(cfg.n_text_layers)
        )
        self.ln = nn.LayerNorm(d)

    def cross_kv(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer cross-attention keys/values, computed once per utterance."""
        attns = [block.cross_attn for block in self.blocks]
        return [(a.key(audio), a.value(audio)) for a in attns if isinstance(a, MultiHeadAttention)]

    def forward(
        self,
        tokens: torch.Tensor,
        cross_kv: list[tuple[torch.Tensor, torch.Tensor]],
        past: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
        cross_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """tokens (batch, n) -> logits (batch, n, vocab) and the updated self-attention cache."""
        offset = 0 if past is None else past[0][0].shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[offset : offset + tokens.shape[1]]
        new_past = []
        for i, block in enumerate(self.blocks):
            x, kv = block(
                x, cross_kv=cross_kv[i], past_kv=None if past is None else past[i], causal=True, cross_mask=cross_mask
            )
            new_past.append(kv)
        x = self.ln(x)
        return x @ self.token_embedding.weight.T, new_past


class Whisper(nn.Module):
    def __init__(self, cfg: WhisperConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = AudioEncoder(cfg)
        self.decoder = TextDecoder(cfg)

    def pad_input(self, mel: torch.Tensor) -> torch.Tensor:
        """Append the configured trailing zero frames to log-mel (batch, 80, frames)."""
        return F.pad(mel, (0, self.cfg.pad_frames)) if self.cfg.pad_frames else mel

    def forward(self, mel: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (batch, n, vocab) for training."""
        audio = self.encoder(self.pad_input(mel))
        logits, _ = self.decoder(tokens, self.decoder.cross_kv(audio))
        return logits

    def first_adapted_encoder_block(self) -> int:
        """Encoder blocks below this index carry no adaptation parameters (0 when the stem
        is adapted too: then nothing of the encoder is frozen, see `adapt_stem`)."""
        if self.cfg.adapt_stem:
            return 0
        enc = [i for i in self.cfg.lora_layers if i < self.cfg.n_audio_layers]
        return min(enc) if enc else self.cfg.n_audio_layers

    def adaptation_parameter_names(self) -> list[str]:
        """Parameters adapted per user: LoRA factors and LayerNorms of the LoRA blocks, and
        with `adapt_stem` the stem convolutions' LoRA factors and biases."""
        names = []
        for name, _ in self.named_parameters():
            if "lora_" in name:
                names.append(name)
        lora_blocks = {n.rsplit(".", 3)[0] for n in names if ".blocks." in n}
        for name, _ in self.named_parameters():
            if "_ln." in name and any(name.startswith(b + ".") for b in lora_blocks):
                names.append(name)
        if self.cfg.adapt_stem:
            names += ["encoder.conv1.bias", "encoder.conv2.bias"]
        return sorted(set(names))
