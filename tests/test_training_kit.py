"""Pieces behind GPU meta-training and the widened adaptation set: LoRA folding for export,
the int8 training kit's backbone copy, and bundles whose adapted blocks change."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dictation.adapt.model.bundle import load_bundle
from dictation.adapt.model.loader import BACKBONE_DIR_ENV, backbone_dir, backbone_sha256, load_backbone
from dictation.adapt.model.whisper import LoRAConv1d, LoRALinear, Whisper, WhisperConfig, merged_copy

ROOT = Path(__file__).resolve().parent.parent


def _gpu_kit():
    spec = importlib.util.spec_from_file_location("gpu_kit", ROOT / "scripts" / "gpu_kit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _small_model() -> Whisper:
    torch.manual_seed(0)
    cfg = WhisperConfig(
        n_audio_ctx=64,
        n_text_ctx=16,
        d_model=32,
        n_heads=2,
        n_audio_layers=2,
        n_text_layers=2,
        n_vocab=50,
        lora_rank=4,
        lora_layers=(1, 2, 3),
        adapt_stem=True,
    )
    model = Whisper(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_b" in name:
                p.normal_(0, 0.5)  # a real update, or folding it would prove nothing
    return model


def test_folding_lora_keeps_the_function_and_drops_the_factors():
    model = _small_model()
    merged = merged_copy(model)
    mel, tokens = torch.randn(1, 80, 40), torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        ref, out = model(mel, tokens), merged(mel, tokens)
    assert torch.allclose(ref, out, atol=1e-5)
    assert not [n for n, _ in merged.named_parameters() if "lora_" in n]
    assert "encoder.conv1.lora_b" in dict(model.named_parameters())  # the stem is folded too
    assert not torch.equal(merged.encoder.conv1.weight, model.encoder.conv1.weight)
    assert any("lora_" in n for n, _ in model.named_parameters())  # the original is untouched
    # ... and the update is not a no-op: without it the output differs.
    for m in merged.modules():
        if isinstance(m, (LoRALinear, LoRAConv1d)):
            assert m.rank == 0
    plain = Whisper(WhisperConfig.from_dict({**model.cfg.to_dict(), "lora_rank": 0}))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "lora_" not in k})
    with torch.no_grad():
        assert not torch.allclose(plain.eval()(mel, tokens), ref, atol=1e-3)


@pytest.fixture(scope="module")
def int8_kit(tmp_path_factory):
    kit = tmp_path_factory.mktemp("kit")
    module = _gpu_kit()
    module.pack_backbone(kit / "backbone")
    module.unpack(kit)
    return kit


def test_quantize_rows_error_is_within_half_a_step():
    a = np.random.default_rng(0).normal(size=(64, 300)).astype(np.float32)
    a[3] = 0.0  # an all-zero row must not divide by zero
    q, scale = _gpu_kit().quantize_rows(a)
    assert q.dtype == np.int8 and scale.shape == (64,)
    err = np.abs(q.astype(np.float32) * scale[:, None] - a)
    assert np.all(err <= scale[:, None] / 2 + 1e-7)
    assert np.all(q[3] == 0)


def test_training_kit_backbone_stands_in_for_the_package(int8_kit, monkeypatch):
    original_sha = backbone_sha256()
    stock = dict(load_backbone().named_parameters())
    kit_dir = int8_kit / "backbone"
    assert not (kit_dir / "model.bin").exists() and (kit_dir / "model.npz").is_file()
    monkeypatch.setenv(BACKBONE_DIR_ENV, str(kit_dir))
    assert backbone_dir() == kit_dir
    # The bundle written on a kit machine must name the real backbone, so it loads here.
    assert backbone_sha256() == original_sha
    copy = dict(load_backbone().named_parameters())
    emb, emb_q = stock["decoder.token_embedding.weight"], copy["decoder.token_embedding.weight"]
    step = emb.abs().amax(dim=1, keepdim=True) / 127
    # half an int8 step, plus float16 rounding of the stored value (<= 127 * step * 2**-11)
    assert torch.all((emb - emb_q).abs() <= step * (0.5 + 127 * 2.0**-11) + 1e-7)
    assert not torch.equal(emb, emb_q)  # it is the int8 copy, not the original
    bundle = load_bundle()  # the backbone check passes through source.json
    assert bundle.adapt_names


def test_missing_override_dir_is_a_clear_error(tmp_path, monkeypatch):
    from dictation.adapt.model.loader import BackboneMissingError

    monkeypatch.setenv(BACKBONE_DIR_ENV, str(tmp_path))
    with pytest.raises(BackboneMissingError, match="no model.bin or model.npz"):
        backbone_dir()


def test_bundle_can_widen_the_adapted_blocks_without_changing_the_model(tmp_path):
    from dictation.adapt.model.bundle import save_bundle

    full = load_bundle()
    lowest = min(full.model.cfg.lora_layers)
    # Start from a bundle that leaves at least one encoder block unadapted (the shipped one
    # may already adapt them all): drop its lowest adapted block and save that.
    narrow_layers = tuple(i for i in full.model.cfg.lora_layers if i != lowest)
    narrowed = load_bundle(lora_layers=narrow_layers)
    save_bundle(narrowed.model, narrowed.inner_lrs, tmp_path, narrowed.info, narrowed.adapt_names)
    base = load_bundle(tmp_path)
    assert base.model.cfg.lora_layers == narrow_layers
    wide = load_bundle(tmp_path, lora_layers=full.model.cfg.lora_layers, new_inner_lr=0.07)
    new = [n for n in wide.adapt_names if n not in base.adapt_names]
    assert new and all(n.startswith(f"encoder.blocks.{lowest}.") for n in new)
    named_base, named_wide = dict(base.model.named_parameters()), dict(wide.model.named_parameters())
    for n in base.adapt_names:  # meta-learned values and rates carried over
        assert torch.equal(named_base[n], named_wide[n])
        assert torch.equal(base.inner_lrs[n], wide.inner_lrs[n])
    assert all(float(named_wide[n].detach().abs().max()) == 0.0 for n in new if "lora_b" in n)
    assert all(abs(float(wide.inner_lrs[n]) - 0.07) < 1e-7 for n in new)
    assert set(wide.inner_lrs) >= set(wide.adapt_names)
    mel, tokens = torch.randn(1, 80, 120), torch.tensor([[50257, 50362, 440]])
    with torch.no_grad():
        assert torch.allclose(base.model(mel, tokens), wide.model(mel, tokens), atol=1e-4)


def test_kit_corpus_manifest_is_read_like_a_built_corpus(tmp_path):
    """The kit's Ogg/Opus files go through the same reader and loader as the cache's WAVs."""
    import soundfile as sf

    from dictation.app.audio import load_audio
    from dictation.lab.corpus.readers import read_manifest

    t = np.arange(16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    (tmp_path / "s").mkdir()
    sf.write(tmp_path / "s" / "a.ogg", audio, 16000, format="OGG", subtype="OPUS", compression_level=0.97)
    (tmp_path / "manifest.jsonl").write_text(
        json.dumps({"audio": "s/a.ogg", "text": "A tone.", "speaker": "s", "source": "unit", "duration": 1.0}) + "\n"
    )
    (u,) = read_manifest(tmp_path)
    back = load_audio(u.audio_path)
    assert abs(len(back) - len(audio)) < 400
    assert np.corrcoef(back[1000:15000], audio[1000:15000])[0, 1] > 0.9


def test_bundle_can_raise_the_encoder_lora_rank_without_changing_the_model():
    """`train --encoder-lora-rank`: trained factors are kept, new directions start as a no-op,
    the fine-tuning baseline's start takes the new shapes, and a lower rank is refused."""
    from dictation.lab.evaluate import initial_values

    base = load_bundle()
    rank = base.model.cfg.encoder_lora_rank or base.model.cfg.lora_rank
    wide = load_bundle(encoder_lora_rank=2 * rank)
    assert wide.adapt_names == base.adapt_names
    nb = {n: p.detach() for n, p in base.model.named_parameters()}
    nw = {n: p.detach() for n, p in wide.model.named_parameters()}
    enc_b = [n for n in base.adapt_names if n.startswith("encoder.") and n.endswith("lora_b")]
    assert enc_b
    for n in enc_b:
        assert nw[n].shape[1] == 2 * rank
        assert torch.allclose(nw[n][:, :rank], 2 * nb[n]) and float(nw[n][:, rank:].abs().max()) == 0.0
        assert abs(float(wide.inner_lrs[n]) - 2 * float(base.inner_lrs[n])) < 1e-6
        a = n[:-1] + "a"
        assert torch.equal(nw[a][:rank], nb[a]) and torch.equal(wide.inner_lrs[a], base.inner_lrs[a])
    dec = [n for n in base.adapt_names if n.startswith("decoder.")]
    assert all(torch.equal(nw[n], nb[n]) and torch.equal(wide.inner_lrs[n], base.inner_lrs[n]) for n in dec)
    mel, tokens = torch.randn(1, 80, 120), torch.tensor([[50257, 50362, 440]])
    with torch.no_grad():
        assert torch.allclose(base.model(mel, tokens), wide.model(mel, tokens), atol=1e-4)
    init = initial_values(wide)
    assert all(init[n].shape == nw[n].shape for n in wide.adapt_names)
    assert all(float(init[n].abs().max()) == 0.0 for n in enc_b)
    if rank > 1:
        with pytest.raises(ValueError, match="cannot load shape"):
            load_bundle(encoder_lora_rank=rank // 2)


def _outer_loss_and_grad(model, params, lrs, support, query, second_order):
    from dictation.adapt.inner_loop import batch_loss, inner_loop

    p = {n: v.detach().clone().requires_grad_(True) for n, v in params.items()}
    fast, _ = inner_loop(model, p, lrs, support, 2, max_grad_norm=1e12, second_order=second_order)
    loss = batch_loss(model, fast, query)
    return float(loss.detach()), torch.autograd.grad(loss, list(p.values()))


def test_second_order_inner_loop_gives_the_exact_outer_gradient():
    """Second-order MAML's outer gradient matches a finite difference of the adapted query
    loss; the first-order one does not (it drops the inner gradients' dependence)."""
    from dictation.adapt.inner_loop import IGNORE, Batch

    torch.manual_seed(0)
    cfg = WhisperConfig(
        n_audio_ctx=64,
        n_text_ctx=16,
        d_model=32,
        n_heads=2,
        n_audio_layers=2,
        n_text_layers=2,
        n_vocab=50,
        lora_rank=4,
        lora_layers=(0, 1, 2, 3),
    )
    model = Whisper(cfg).double().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    names = model.adaptation_parameter_names()
    named = dict(model.named_parameters())
    params = {n: named[n] + (0.3 * torch.randn_like(named[n]) if "lora_b" in n else 0) for n in names}
    lrs = {n: torch.tensor(0.5, dtype=torch.float64) for n in names}

    def batch(seed):
        g = torch.Generator().manual_seed(seed)
        mel = torch.randn(2, 80, 40, generator=g, dtype=torch.float64)
        mask = torch.ones(2, 20, dtype=torch.bool)
        tokens = torch.randint(0, 50, (2, 6), generator=g)
        targets = torch.roll(tokens, -1, 1)
        targets[:, -1] = IGNORE
        with torch.no_grad():
            lower = model.encoder.lower(mel, model.first_adapted_encoder_block(), mask)
        return Batch(lower, mask, tokens, targets, ["", ""])

    support, query = batch(1), batch(2)
    _, exact = _outer_loss_and_grad(model, params, lrs, support, query, second_order=True)
    _, first = _outer_loss_and_grad(model, params, lrs, support, query, second_order=False)
    direction = {n: torch.randn_like(v) for n, v in params.items()}
    eps = 1e-5
    plus = _outer_loss_and_grad(
        model, {n: v + eps * direction[n] for n, v in params.items()}, lrs, support, query, False
    )[0]
    minus = _outer_loss_and_grad(
        model, {n: v - eps * direction[n] for n, v in params.items()}, lrs, support, query, False
    )[0]
    numeric = (plus - minus) / (2 * eps)

    def along(grads: list) -> float:
        return float(sum((g * direction[n]).sum() for g, n in zip(grads, params)))

    assert abs(along(exact) - numeric) < 1e-6 * max(1.0, abs(numeric))
    assert abs(along(first) - numeric) > 1e-3 * abs(numeric)
