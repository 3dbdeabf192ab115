"""The Meta-SGD inner loop and the user-facing adapt() on the real bundled model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tts_wav

from dictation.adapt.inner_loop import _loss_and_grads, _upper_logits, batch_loss, make_batch, make_batches
from dictation.adapt.model.bundle import load_bundle
from dictation.adapt.model.loader import backbone_dir
from dictation.adapt.procedure import AdaptationCancelled, AdaptationError, adapt, resolve_device
from dictation.app.decoding import TextTokenizer

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things.",
    "We will meet at the station at half past nine.",
]


@pytest.fixture(scope="module")
def takes(tmp_path_factory):
    from dictation.app.audio import load_audio

    d = tmp_path_factory.mktemp("takes")
    return [(load_audio(tts_wav(t, d / f"{i}.wav", "espeak", "en-gb-scotland")), t) for i, t in enumerate(TEXTS)]


@pytest.fixture(scope="module")
def tokenizer():
    return TextTokenizer(backbone_dir() / "tokenizer.json")


@pytest.mark.parametrize("stem", [False, True], ids=["frozen-stem", "adapted-stem"])
def test_padded_batch_equals_each_utterance_alone(takes, tokenizer, stem):
    torch.set_num_threads(1)
    model = load_bundle(adapt_stem=True).model if stem else load_bundle().model
    if stem:  # a real stem update, so that padding leaking into the convolutions would show
        with torch.no_grad():
            model.encoder.conv1.lora_b.normal_(0, 0.05)
            model.encoder.conv2.lora_b.normal_(0, 0.05)
    with torch.no_grad():
        together = _upper_logits(model, make_batch(model, tokenizer, takes))
        for i, take in enumerate(takes):
            alone = _upper_logits(model, make_batch(model, tokenizer, [take]))
            n = alone.shape[1]
            assert torch.allclose(together[i, :n], alone[0], atol=1e-3), f"utterance {i} differs when batched"


def test_adaptation_lowers_the_loss_on_the_takes_and_changes_only_adaptation_parameters(takes, tokenizer):
    torch.set_num_threads(1)
    bundle = load_bundle()
    before = {n: p.detach().clone() for n, p in bundle.model.named_parameters()}
    with torch.no_grad():
        loss0 = float(batch_loss(bundle.model, None, make_batch(bundle.model, tokenizer, takes)))
    progress = []
    adapted = adapt(takes, steps=3, device="cpu", progress=lambda *a: progress.append(a), bundle=bundle)
    with torch.no_grad():
        loss1 = float(batch_loss(adapted.model, None, make_batch(adapted.model, tokenizer, takes)))
    assert loss1 < loss0 * 0.9
    assert [p[:2] for p in progress] == [(1, 3), (2, 3), (3, 3)]
    changed = {n for n, p in adapted.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= set(bundle.adapt_names)


def test_cancel_stops_before_the_next_step(takes):
    calls = []

    def cancel_after_one() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(AdaptationCancelled):
        adapt(takes, steps=5, device="cpu", should_cancel=cancel_after_one)
    assert len(calls) == 2


def test_no_takes_is_a_clear_error():
    with pytest.raises(AdaptationError, match="no enrollment takes"):
        adapt([], steps=1, device="cpu")


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(AdaptationError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(AdaptationError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")
def test_adaptation_runs_on_cuda(takes):
    adapted = adapt(takes, steps=2, device="cuda")
    assert adapted.device.startswith("cuda") and len(adapted.losses) == 2
    assert isinstance(adapted.transcribe_torch(takes[0][0]), str)


def test_cross_check_scores_every_take_with_a_model_adapted_without_it(takes, monkeypatch):
    """The app's check: each fold adapts on the other takes and transcribes only its own."""
    from dictation.adapt import procedure as adaptation
    from dictation.app.text import wer

    torch.set_num_threads(1)
    bundle = load_bundle()
    before_params = {n: p.detach().clone() for n, p in bundle.model.named_parameters()}
    four = takes + [takes[0]]  # 4 takes: two folds of two
    log: list[tuple[str, object]] = []
    real_batch, real_transcribe = adaptation.make_batches, adaptation.transcribe

    def spy_batch(model, tok, items, device="cpu", chunk=None):
        log.append(("train", [t for _, t in items]))
        log.append(("lengths", [len(a) for a, _ in items]))
        return real_batch(model, tok, items, device, chunk)

    def spy_transcribe(model, audio, rules, tok, beam):
        adapted = any(not torch.equal(p, before_params[n]) for n, p in model.named_parameters())
        log.append(("transcribe", (id(audio), adapted)))
        log.append(("beam", beam))
        return real_transcribe(model, audio, rules, tok, beam=beam)

    monkeypatch.setattr(adaptation, "make_batches", spy_batch)
    monkeypatch.setattr(adaptation, "transcribe", spy_transcribe)
    check = adaptation.cross_check(four, steps=2, device="cpu", bundle=bundle, speed_copies=(0.8,))

    # Base pass: every take once, unadapted; then per fold the other fold's takes and
    # their speed copies (never a copy of a take the fold is scored on).
    base = [e for e in log if e[0] == "transcribe" and not e[1][1]]
    assert [e[1][0] for e in base] == [id(a) for a, _ in four]
    trained = [e[1] for e in log if e[0] == "train"]
    assert trained == [[four[1][1], four[3][1]] * 2, [four[0][1], four[2][1]] * 2]
    lengths = [e[1] for e in log if e[0] == "lengths"]
    for fold, (i, j) in zip(lengths, [(1, 3), (0, 2)]):
        assert fold[:2] == [len(four[i][0]), len(four[j][0])]
        assert fold[2:] == [pytest.approx(len(four[k][0]) / 0.8, abs=2) for k in (i, j)]
    scored = [e[1] for e in log if e[0] == "transcribe" and e[1][1]]
    assert [s[0] for s in scored] == [id(four[0][0]), id(four[2][0]), id(four[1][0]), id(four[3][0])]
    # The bundle's model is left exactly as it was.
    assert all(torch.equal(p, before_params[n]) for n, p in bundle.model.named_parameters())
    from dictation.app.decoding import DEFAULT_BEAM, DecodingRules

    assert {e[1] for e in log if e[0] == "beam"} == {DEFAULT_BEAM}  # decoded as the app decodes

    rules = DecodingRules.from_config(backbone_dir() / "config.json")
    tok = TextTokenizer(backbone_dir() / "tokenizer.json")
    base_hyps = [real_transcribe(bundle.model, a, rules, tok) for a, _ in four]
    assert check.before_wer == pytest.approx(wer([t for _, t in four], base_hyps))
    assert (check.n_takes, check.folds) == (4, 2) and check.after_wer >= 0.0


def test_cross_check_cancel_restores_the_model(takes):
    from dictation.adapt.procedure import cross_check

    bundle = load_bundle()
    before_params = {n: p.detach().clone() for n, p in bundle.model.named_parameters()}
    calls = []
    with pytest.raises(AdaptationCancelled):
        cross_check(
            takes, steps=3, device="cpu", bundle=bundle, should_cancel=lambda: calls.append(1) or len(calls) > 5
        )  # in fold 2
    assert all(torch.equal(p, before_params[n]) for n, p in bundle.model.named_parameters())
    with pytest.raises(AdaptationError, match="at least 2 takes"):
        cross_check(takes[:1], steps=1, device="cpu", bundle=bundle)


def test_widening_to_the_stem_keeps_the_model_and_the_inner_loop_moves_the_stem(takes, tokenizer):
    """`train --adapt-stem`: new stem tensors start as a no-op at their own inner rate, the
    batch keeps log-mel so that gradients reach the convolutions, and one step moves them."""
    from dictation.adapt.inner_loop import inner_loop

    torch.set_num_threads(1)
    plain, wide = load_bundle(), load_bundle(adapt_stem=True, new_inner_lr=0.05)
    new = sorted(set(wide.adapt_names) - set(plain.adapt_names))
    assert new == [
        "encoder.conv1.bias",
        "encoder.conv1.lora_a",
        "encoder.conv1.lora_b",
        "encoder.conv2.bias",
        "encoder.conv2.lora_a",
        "encoder.conv2.lora_b",
    ]
    assert all(abs(float(wide.inner_lrs[n]) - 0.05) < 1e-7 for n in new)
    batch = make_batch(wide.model, tokenizer, takes)
    assert batch.lower.shape[1] == 80  # log-mel, not a frozen encoder output
    with torch.no_grad():
        same = float(batch_loss(plain.model, None, make_batch(plain.model, tokenizer, takes)))
        assert abs(float(batch_loss(wide.model, None, batch)) - same) < 1e-4
    named = dict(wide.model.named_parameters())
    params = {n: named[n].detach().clone().requires_grad_(True) for n in wide.adapt_names}
    fast, losses = inner_loop(wide.model, params, wide.inner_lrs, batch, 2)
    assert losses[1] < losses[0]
    for n in new:
        if not n.endswith("lora_a"):  # A's gradient is zero while B is (B starts at zero)
            assert not torch.equal(fast[n], params[n]), f"{n} did not move"


def test_batches_of_similar_length_give_the_loss_and_gradient_of_one_batch(takes, tokenizer):
    """`make_batches` (how a CPU adapts: short batches, sorted by length) changes the cost,
    not the step: the token-weighted loss and gradient equal those of one batch."""
    torch.set_num_threads(1)
    bundle = load_bundle()
    model = bundle.model
    # Different lengths and token counts, so an unweighted mean of batch losses would differ.
    items = takes + [(takes[0][0][: len(takes[0][0]) // 2], "The quick brown fox.")]
    batches = make_batches(model, tokenizer, items, chunk=2)
    assert [len(b) for b in batches] == [2, 2]
    assert batches[0].texts == ["The quick brown fox.", min(takes, key=lambda t: len(t[0]))[1]]
    named = dict(model.named_parameters())
    params = {n: named[n].detach().clone().requires_grad_(True) for n in bundle.adapt_names}
    one_loss, one_grads = _loss_and_grads(model, params, make_batch(model, tokenizer, items), False)
    loss, grads = _loss_and_grads(model, params, batches, False)
    assert float(loss) == pytest.approx(float(one_loss), rel=1e-5)
    with torch.no_grad():
        assert float(batch_loss(model, params, batches)) == pytest.approx(float(one_loss), rel=1e-5)
    with torch.no_grad():
        unweighted = sum(float(batch_loss(model, params, b)) for b in batches) / len(batches)
    assert abs(unweighted - float(one_loss)) > 1e-3  # the weighting is what makes them agree
    for name, a, b in zip(params, one_grads, grads):
        assert float((a - b).norm()) <= 1e-4 * float(a.norm()) + 1e-12, name
    with pytest.raises(ValueError, match="chunk"):
        make_batches(model, tokenizer, items, chunk=0)
    assert [len(b) for b in make_batches(model, tokenizer, items * 3)] == [5, 5, 2]  # CPU default


def test_speed_copies_are_added_to_the_takes_the_bundle_adapts_on(takes):
    """The bundle names the user-time copies; adapt() trains on takes + copies and records them."""
    from dictation.adapt import procedure as adaptation
    from dictation.adapt.augment import with_speed_copies

    copies = with_speed_copies(takes[:2], (0.9, 1.1))
    assert [t for _, t in copies] == [takes[0][1], takes[1][1]] * 3
    for (audio, _), factor, (orig, _) in zip(copies[2:], (0.9, 0.9, 1.1, 1.1), takes[:2] * 2):
        assert len(audio) == pytest.approx(len(orig) / factor, abs=2) and audio.dtype == np.float32
    bundle = load_bundle()
    bundle.info["enroll_speed_copies"] = [0.9, 1.1]
    assert adaptation.speed_copies_of(bundle) == (0.9, 1.1)
    seen = []
    real = adaptation.make_batches

    def spy(model, tok, items, device="cpu", chunk=None):
        seen.append(len(items))
        return real(model, tok, items, device, chunk)

    mp = pytest.MonkeyPatch()
    mp.setattr(adaptation, "make_batches", spy)
    try:
        adapted = adapt(takes, steps=1, device="cpu", bundle=bundle)
        plain = adapt(takes, steps=1, device="cpu", bundle=load_bundle(), speed_copies=())
    finally:
        mp.undo()
    assert seen == [len(takes) * 3, len(takes)]
    assert adapted.speed_copies == (0.9, 1.1) and plain.speed_copies == ()
    bundle.info["enroll_speed_copies"] = [1.0]
    with pytest.raises(AdaptationError, match="enroll_speed_copies"):
        adaptation.speed_copies_of(bundle)
    with pytest.raises(ValueError, match="speed factors"):
        adapt(takes, steps=1, device="cpu", bundle=load_bundle(), speed_copies=(3.0,))


def test_more_takes_get_the_bundles_raised_step_count(takes):
    """`inner_steps_by_takes` raises the steps from a number of takes on; adapt() follows it."""
    from dictation.adapt.procedure import steps_of

    bundle = load_bundle()
    bundle.info.update({"inner_steps": 1, "inner_steps_by_takes": [[3, 2], [20, 10]]})
    assert [steps_of(bundle, n) for n in (1, 2, 3, 19, 20, 36)] == [1, 1, 2, 2, 10, 10]
    assert steps_of(bundle, 36, override=4) == 4
    adapted = adapt(takes, device="cpu", bundle=bundle, speed_copies=())  # 3 takes: 2 steps
    fewer = adapt(takes[:2], device="cpu", bundle=bundle, speed_copies=())  # 2 takes: 1 step
    assert (adapted.steps, len(adapted.losses)) == (2, 2)
    assert (fewer.steps, len(fewer.losses)) == (1, 1)
    for bad in ([[0, 5]], [[10]], "ten", [[10, "x"]]):
        bundle.info["inner_steps_by_takes"] = bad
        with pytest.raises(AdaptationError, match="inner_steps_by_takes"):
            steps_of(bundle, 10)


def test_the_shipped_rule_never_gives_more_takes_fewer_steps():
    from dictation.adapt.procedure import steps_of

    bundle = load_bundle()
    steps = [steps_of(bundle, n) for n in range(1, 60)]
    assert steps[9] == bundle.info["inner_steps"]  # 10 takes: the meta-trained step count
    assert all(a <= b for a, b in zip(steps, steps[1:]))


def test_bfloat16_inner_steps_follow_float32_and_keep_float32_parameters(takes, tokenizer):
    """The bfloat16 passes compute a different (rounded) gradient, not another one: the
    update after two steps points where float32's does, and the fast weights stay float32."""
    from dictation.adapt.inner_loop import inner_loop

    torch.set_num_threads(1)
    bundle = load_bundle()
    named = dict(bundle.model.named_parameters())
    init = {n: named[n].detach().clone().requires_grad_(True) for n in bundle.adapt_names}
    lrs = {n: bundle.inner_lrs[n] for n in bundle.adapt_names}
    batch = make_batches(bundle.model, tokenizer, takes)
    updates = {}
    for precision in ("float32", "bfloat16"):
        fast, losses = inner_loop(bundle.model, init, lrs, batch, 2, precision=precision)
        assert all(v.dtype == torch.float32 for v in fast.values())
        assert losses[1] < losses[0]
        updates[precision] = torch.cat([(fast[n] - init[n]).detach().flatten() for n in init])
    a, b = updates["float32"], updates["bfloat16"]
    assert not torch.equal(a, b), "bfloat16 autocast did not take effect"
    assert float(torch.nn.functional.cosine_similarity(a, b, dim=0)) > 0.99
    with pytest.raises(ValueError, match="precision"):
        inner_loop(bundle.model, init, lrs, batch, 1, precision="float16")


def test_precision_comes_from_the_bundle_and_auto_needs_native_bfloat16(takes):
    import argparse

    from dictation.adapt.inner_loop import PRECISIONS, cpu_has_native_bf16, resolve_precision
    from dictation.adapt.procedure import precision_of
    from dictation.cli.lab import register

    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)
    evaluate = sub.choices["evaluate"]
    assert next(a for a in evaluate._actions if a.dest == "precision").choices == PRECISIONS
    assert resolve_precision("auto", "cpu") == ("bfloat16" if cpu_has_native_bf16() else "float32")
    assert resolve_precision("auto", "cuda") == "float32"  # resolving needs no GPU
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    bundle = load_bundle()
    bundle.info.pop("inner_precision", None)
    assert precision_of(bundle) == "float32"  # bundles from before the setting adapt as they did
    assert precision_of(bundle, "bfloat16") == "bfloat16"
    adapted = adapt(takes[:2], steps=1, device="cpu", bundle=bundle, speed_copies=(), precision="bfloat16")
    assert adapted.precision == "bfloat16"
    bundle.info["inner_precision"] = "half"
    with pytest.raises(AdaptationError, match="inner_precision"):
        precision_of(bundle)
    with pytest.raises(AdaptationError, match="precision"):
        precision_of(load_bundle(), "int8")
    shipped = load_bundle()
    assert precision_of(shipped) == "auto"
    assert adapt(takes[:2], steps=1, device="cpu", bundle=shipped, speed_copies=()).precision == resolve_precision(
        "auto", "cpu"
    )


def test_learner_adapts_step_by_step_exactly_as_the_inner_loop_and_restores_the_model(takes, tokenizer):
    """One Learner serves adapt, the check, the evaluation and the scripts: its
    step-at-a-time adaptation (cancellable, no graph kept across steps) gives the values
    and losses of `inner_loop` over all steps, bit for bit, and leaves the model alone
    until told; `applied` and `restoring` put the initial values back, errors or not."""
    from dictation.adapt.inner_loop import inner_loop
    from dictation.adapt.learner import Learner

    torch.set_num_threads(1)
    bundle = load_bundle()
    before = {n: p.detach().clone() for n, p in bundle.model.named_parameters()}
    learner = Learner.from_bundle(bundle)
    assert learner.names == bundle.adapt_names
    batch = make_batches(bundle.model, tokenizer, takes)
    seen: list[tuple[int, int, float]] = []
    fast, losses = learner.adapt(batch, 3, progress=lambda *a: seen.append(a))
    start = {n: v.clone().requires_grad_(True) for n, v in learner.init.items()}
    whole, whole_losses = inner_loop(bundle.model, start, bundle.inner_lrs, batch, 3)
    assert losses == whole_losses and [s[:2] for s in seen] == [(1, 3), (2, 3), (3, 3)]
    assert all(torch.equal(fast[n], whole[n].detach()) for n in fast)
    assert not any(v.requires_grad for v in fast.values())
    # Continuing from step 2's values is the same as running 3 steps.
    two, _ = learner.adapt(batch, 2)
    assert all(torch.equal(learner.adapt(batch, 1, start=two)[0][n], fast[n]) for n in fast)
    assert all(torch.equal(p, before[n]) for n, p in bundle.model.named_parameters())

    named = dict(bundle.model.named_parameters())
    with learner.applied(fast):
        assert all(torch.equal(named[n], fast[n]) for n in fast)
    with pytest.raises(RuntimeError), learner.restoring():
        learner.write(fast)
        raise RuntimeError("transcription failed")
    assert all(torch.equal(p, before[n]) for n, p in bundle.model.named_parameters())
    calls: list[int] = []
    with pytest.raises(AdaptationCancelled):
        learner.adapt(batch, 3, should_cancel=lambda: calls.append(1) or len(calls) > 1)
    assert len(calls) == 2  # checked before each step: cancelled before the second


def test_trainable_learner_holds_the_values_meta_training_trains():
    """Meta-training's learner: initial values and rates as parameters of their own (the
    model's frozen), and `restore` writes the trained values into the model to be saved."""
    from dictation.adapt.learner import Learner

    bundle = load_bundle()
    learner = Learner.from_bundle(bundle, trainable=True)
    assert not any(p.requires_grad for p in bundle.model.parameters())
    assert all(isinstance(v, torch.nn.Parameter) for v in [*learner.init.values(), *learner.inner_lrs.values()])
    assert all(torch.equal(learner.inner_lrs[n], bundle.inner_lrs[n]) for n in learner.names)
    name = next(n for n in learner.names if "lora_b" in n)
    with torch.no_grad():
        learner.init[name].add_(0.01)
    assert not torch.equal(dict(bundle.model.named_parameters())[name], learner.init[name])
    learner.restore()
    assert torch.equal(dict(bundle.model.named_parameters())[name], learner.init[name])
