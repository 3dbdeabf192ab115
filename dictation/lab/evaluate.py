"""Held-out evaluation: base vs MAML-adapted vs plain fine-tuning, per speaker.

- base: the bundled model's initial values, no adaptation.
- adapted: the bundle's Meta-SGD inner loop (meta-learned init and rates, fixed steps), on
  the enrollment phrases plus their speed copies when the bundle names speeds, as the app.
- finetune: the same parameters, steps and data (copies included), started from the non-meta-learned
  initial values (stock Whisper + zero LoRA update), optimised with Adam.
- gated: what the app installs (`dictation.adapt.worker`): the adapted model (from the
  voice space's start when one is scored), unless the 2-fold cross-validated check on
  the enrollment phrases shows it broken (then base).
Optionally faster-whisper tiny.en (stock, 30 s padded) as the external reference.
All error rates use `dictation.app.text.normalize_for_wer`.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import torch

from dictation.adapt.inner_loop import Batch, autocast_for, batch_loss, make_batches, resolve_precision
from dictation.adapt.learner import Learner
from dictation.adapt.model.bundle import Bundle, load_bundle
from dictation.adapt.model.inference import transcribe
from dictation.adapt.model.loader import backbone_dir
from dictation.adapt.model.whisper import Whisper
from dictation.adapt.voice_space.space import VoiceSpace
from dictation.app.decoding import DEFAULT_BEAM, DecodingRules, TextTokenizer, load_tokenizer_and_rules
from dictation.app.text import cer, wer, word_errors

FINETUNE_LR = 1e-2  # Adam; best of 3e-3, 1e-2, 3e-2 on meta-validation speakers (docs/experiments/tune_adaptation.py)


def _transcribe_all(
    model: Whisper,
    items: list[tuple[np.ndarray, str]],
    rules: DecodingRules,
    tok: TextTokenizer,
    beam: int = DEFAULT_BEAM,
) -> list[str]:
    return [transcribe(model, a, rules, tok, beam=beam) for a, _ in items]


def initial_values(bundle: Bundle) -> dict[str, torch.Tensor]:
    """Non-meta-learned initial values: stored `init/` arrays, else zero LoRA-B and backbone LNs."""
    from dictation.adapt.model.loader import load_backbone

    stock = dict(load_backbone(bundle.model.cfg).named_parameters())
    values = {}
    stored = {}
    weights = bundle.path / "weights.npz"
    if weights.is_file():
        with np.load(weights) as z:
            stored = {k[5:]: torch.from_numpy(z[k]) for k in z.files if k.startswith("init/")}
    named = dict(bundle.model.named_parameters())
    for n in bundle.adapt_names:
        if n in stored and stored[n].shape == named[n].shape:
            values[n] = stored[n]
        elif n in stored and "lora_a" in n:
            # LoRA widened to a higher rank in meta-training: the stored init rows, then the
            # new rows' own init (still untrained when widened).
            values[n] = torch.cat([stored[n], named[n].detach()[stored[n].shape[0] :]])
        elif "lora_b" in n:
            values[n] = torch.zeros_like(named[n])
        elif "lora_a" in n:
            values[n] = named[n].detach().clone()  # untrained bundle: A is still its init
        else:
            values[n] = stock[n].detach().clone()
    return values


def evaluate_speaker(
    enroll: list[tuple[np.ndarray, str]],
    test: list[tuple[np.ndarray, str]],
    steps: int | None = None,
    bundle: Bundle | None = None,
    finetune_lr: float = FINETUNE_LR,
    with_finetune: bool = True,
    with_gate: bool = True,
    speed_copies: tuple[float, ...] | None = None,
    beam: int = DEFAULT_BEAM,
    precision: str | None = None,
    voice_space: VoiceSpace | None = None,
) -> dict:
    """WER/CER of base, MAML-adapted and fine-tuned models on `test` after enrolling on `enroll`.

    `speed_copies`: speeds of the enrollment copies (default: the bundle's, as the app).
    `beam`: beam width of every transcription, the check's included (default: the app's).
    `precision`: of the adaptation passes, MAML, fine-tuning and check alike (default: the
    bundle's, as the app). `voice_space`: also the bank's start alone and the MAML steps
    from it (`voice_eval.voice_space_scores`)."""
    from dictation.adapt.augment import with_speed_copies
    from dictation.adapt.procedure import precision_of, speed_copies_of, steps_of

    torch.manual_seed(0)
    bundle = bundle or load_bundle()
    factors = speed_copies_of(bundle, speed_copies)
    used = resolve_precision(precision_of(bundle, precision))  # evaluation adapts on the CPU
    tok, rules = load_tokenizer_and_rules(backbone_dir())
    model = bundle.model.eval()
    learner = Learner.from_bundle(bundle)  # the meta-learned initial values, put back at the end
    steps = steps_of(bundle, len(enroll), steps)
    refs = [t for _, t in test]
    out: dict = {
        "n_enroll": len(enroll),
        "n_test": len(test),
        "steps": steps,
        "speed_copies": list(factors),
        "beam": beam,
        "precision": used,
    }
    with learner.restoring():
        base_hyps = _transcribe_all(model, test, rules, tok, beam)
        out["base_wer"], out["base_cer"] = wer(refs, base_hyps), cer(refs, base_hyps)

        t0 = time.perf_counter()
        batch = make_batches(model, tok, with_speed_copies(enroll, factors))  # as the app on a CPU
        fast, losses = learner.adapt(batch, steps, precision=used)
        out["adapt_seconds"] = time.perf_counter() - t0
        with learner.applied(fast):
            hyps = _transcribe_all(model, test, rules, tok, beam)
        out["adapted_wer"], out["adapted_cer"] = wer(refs, hyps), cer(refs, hyps)
        out["adapt_losses"] = [round(x, 4) for x in losses]

        if voice_space is not None:
            from dictation.lab.voice_eval import voice_space_scores

            scored = voice_space_scores(
                learner,
                voice_space,
                enroll,
                batch,
                test,
                lambda items: _transcribe_all(model, items, rules, tok, beam),
                steps,
                used,
            )
            vs_errors = {k: scored.pop(k) for k in ("voice_space_errors", "voice_space_zero_errors") if k in scored}
            out.update(scored)
        if with_finetune:
            # From the non-meta-learned values, read with the meta-learned ones in the model.
            init = initial_values(bundle)
            out.update(_finetune(learner, init, batch, test, rules, tok, steps, finetune_lr, used, beam))
        if with_gate and len(enroll) >= 2:
            from dictation.adapt.procedure import cross_check
            from dictation.adapt.worker import decide_install

            # What the app installs: with a voice space it adapts from the bank's start.
            from_bank = "voice_space_wer" in out
            check = cross_check(
                enroll,
                steps,
                "cpu",
                bundle=bundle,
                speed_copies=factors,
                beam=beam,
                precision=used,
                voice_space=from_bank,
            )
            out["check_before_wer"], out["check_after_wer"] = check.before_wer, check.after_wer
            out["gate_installed"] = decide_install(check.before_wer, check.after_wer)[0]
            installed = out["voice_space_wer"] if from_bank else out["adapted_wer"]
            out["gated_wer"] = installed if out["gate_installed"] else out["base_wer"]
    # Per test phrase, so that a per-speaker change can be told from noise (resampling).
    base_counts, adapted_counts = word_errors(refs, base_hyps), word_errors(refs, hyps)
    out["utterances"] = {
        "words": [w for _, w in base_counts],
        "base_errors": [e for e, _ in base_counts],
        "adapted_errors": [e for e, _ in adapted_counts],
    }
    if voice_space is not None:
        out["utterances"].update(vs_errors)
    out["examples"] = [{"ref": r, "base": b, "adapted": a} for r, b, a in list(zip(refs, base_hyps, hyps))[:3]]
    return out


def _finetune(
    learner: Learner,
    init: dict[str, torch.Tensor],
    batch: list[Batch],
    test: list[tuple[np.ndarray, str]],
    rules: DecodingRules,
    tok: TextTokenizer,
    steps: int,
    lr: float,
    precision: str,
    beam: int,
) -> dict:
    """The plain fine-tuning baseline: Adam on the same parameters, steps and data from
    `init` (the non-meta-learned values); its WER, and the WER of `init` unadapted. The
    model holds the learner's initial values again afterwards."""
    model, refs = learner.model, [t for _, t in test]
    params = {n: v.clone().requires_grad_(True) for n, v in init.items()}
    opt = torch.optim.Adam(params.values(), lr=lr)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        with autocast_for(precision):
            loss = batch_loss(model, params, batch)
        loss.backward()
        opt.step()
    out: dict = {"finetune_seconds": time.perf_counter() - t0, "finetune_lr": lr}
    with learner.applied({n: v.detach() for n, v in params.items()}):
        ft_hyps = _transcribe_all(model, test, rules, tok, beam)
    out["finetune_wer"], out["finetune_cer"] = wer(refs, ft_hyps), cer(refs, ft_hyps)
    # Base of the non-meta-learned init, to tell the meta-trained base apart from stock.
    with learner.applied(init):
        stock_hyps = _transcribe_all(model, test, rules, tok, beam)
    out["stock_unpadded_wer"] = wer(refs, stock_hyps)
    return out


FASTER_WHISPER_BEAM = 5  # faster-whisper's default beam_size: stock Whisper as its users get it


@functools.lru_cache(maxsize=1)
def _faster_whisper_model():
    """faster-whisper tiny.en, loaded once per process (a batch run scores every speaker at
    two beam widths), or None when faster-whisper is not installed."""
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        return None
    return WhisperModel(str(backbone_dir()), device="cpu", compute_type="float32", cpu_threads=2)


def faster_whisper_wer(test: list[tuple[np.ndarray, str]], beam: int = FASTER_WHISPER_BEAM) -> float | None:
    """WER of stock Whisper tiny.en via faster-whisper (padded; beam 1 is greedy), if installed."""
    fw = _faster_whisper_model()
    if fw is None:
        return None
    return wer([t for _, t in test], [faster_whisper_text(fw, audio, beam) for audio, _ in test])


def faster_whisper_text(fw, audio: np.ndarray, beam: int = FASTER_WHISPER_BEAM) -> str:
    """Stock Whisper's transcript of one utterance (`fw`: `_faster_whisper_model()`), as its
    users get it: no timestamps, no previous text, no VAD, temperature 0."""
    segs, _ = fw.transcribe(
        audio,
        beam_size=beam,
        without_timestamps=True,
        temperature=0,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    return " ".join(s.text.strip() for s in segs)


def load_pairs(directory: Path) -> list[tuple[np.ndarray, str]]:
    """NAME.wav + NAME.txt pairs as (16 kHz audio, text), sorted by name."""
    from dictation.app.audio import load_audio
    from dictation.lab.corpus.readers import read_pairs_dir

    return [(load_audio(u.audio_path), u.text) for u in read_pairs_dir(Path(directory))]
