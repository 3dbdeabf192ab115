"""The voice space: embedding head, verification EER, bank, `train-voice`, and its use in
adaptation and `evaluate` (on a small espeak-ng corpus made here)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from conftest import READ_SENTENCES, tts_wav

from dictation.adapt.voice_space.bank import VoiceBank, spherical_kmeans
from dictation.adapt.voice_space.head import VoiceHead, ge2e_loss
from dictation.lab.voice_train import HeadConfig, equal_error_rate, train_head, verification_eer

SENTENCES = READ_SENTENCES[:12]
VOICES = {  # split -> espeak-ng voices, one speaker each
    "train": ["en-us", "en-gb-scotland", "en-029"],
    "validation": ["en-gb-x-rp", "en-us+f3"],
    "test": ["en-gb-x-gbclan", "en-us+m7"],
}


# ---------------------------------------------------------------- pieces


def _speakers(n_spk: int, n_utt: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic states (utterances, 5 layers, 16): the voice lives in two features of each
    layer, louder noise in the other fourteen, as a head must learn to tell."""
    rng = np.random.default_rng(seed)
    out = {}
    for s in range(n_spk):
        centre = np.zeros((5, 16))
        centre[:, :2] = rng.normal(size=(5, 2)) * 1.5
        noise = rng.normal(size=(n_utt, 5, 16)) * np.r_[np.full(2, 0.3), np.full(14, 2.0)]
        out[f"s{s}"] = (centre + noise).astype(np.float32)
    return out


def test_equal_error_rate_of_separated_overlapping_and_shuffled_scores() -> None:
    same = np.array([1, 1, 1, 0, 0, 0], bool)
    assert equal_error_rate(np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1]), same)[0] == 0.0
    eer, threshold = equal_error_rate(np.array([0.9, 0.8, 0.2, 0.7, 0.3, 0.1]), same)
    assert eer == pytest.approx(1 / 3) and 0.2 <= threshold <= 0.8
    with pytest.raises(ValueError):
        equal_error_rate(np.array([0.5, 0.4]), np.array([1, 1], bool))


def test_ge2e_loss_is_lower_when_each_speaker_is_tight() -> None:
    torch.manual_seed(0)
    w, b = torch.tensor(10.0), torch.tensor(-5.0)
    centres = torch.nn.functional.normalize(torch.randn(4, 1, 8), dim=-1)
    tight = torch.nn.functional.normalize(centres + 0.05 * torch.randn(4, 5, 8), dim=-1)
    loose = torch.nn.functional.normalize(torch.randn(4, 5, 8), dim=-1)
    assert float(ge2e_loss(tight, w, b)) < 0.5 * float(ge2e_loss(loose, w, b))


def test_training_the_head_lowers_the_verification_eer_of_unseen_speakers() -> None:
    train, held = _speakers(24, 12, seed=1), _speakers(8, 14, seed=2)
    untrained = VoiceHead(range(5), 16, dim=8, hidden=32)
    untrained.set_statistics(np.concatenate(list(train.values())))
    before = verification_eer(untrained, held)[0]
    head, history = train_head(
        train, HeadConfig(dim=8, hidden=32, steps=200, speakers_per_step=8), held, eval_every=100
    )
    after = verification_eer(head, held)[0]
    assert after < 0.5 * before and after < 0.1, (before, after)
    assert history[-1]["step"] == 200
    # Saved and rebuilt, the head gives the same embeddings.
    again = VoiceHead.from_arrays(head.to_arrays())
    x = torch.from_numpy(held["s0"])
    assert torch.allclose(head(x), again(x))


def test_spherical_kmeans_finds_two_obvious_groups() -> None:
    rng = np.random.default_rng(0)
    a = np.array([1.0, 0, 0]) + 0.05 * rng.normal(size=(10, 3))
    b = np.array([0, 1.0, 0]) + 0.05 * rng.normal(size=(10, 3))
    points = np.concatenate([a, b])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    centroids, assign = spherical_kmeans(points, 2)
    assert len(set(assign[:10])) == 1 and len(set(assign[10:])) == 1 and assign[0] != assign[10]
    assert np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)


def test_bank_start_adds_the_nearest_entrys_delta_and_leaves_far_voices_at_the_init() -> None:
    centroids = np.eye(3, dtype=np.float32)[:2]  # two entries, along x and y
    deltas = {"p": np.stack([np.full(4, 1.0), np.full(4, -2.0)]).astype(np.float32)}
    bank = VoiceBank(centroids, deltas, sharpness=200.0, scale=0.5, min_similarity=0.5)
    init = {"p": torch.zeros(4), "q": torch.ones(2)}
    near_x = bank.start(init, np.array([0.99, 0.1, 0.0], np.float32))
    assert torch.allclose(near_x["p"], torch.full((4,), 0.5), atol=1e-3)  # scale x entry 0
    assert torch.equal(near_x["q"], init["q"])  # a tensor the bank does not hold
    near_y = bank.start(init, np.array([0.1, 0.99, 0.0], np.float32))
    assert torch.allclose(near_y["p"], torch.full((4,), -1.0), atol=1e-3)
    far = bank.start(init, np.array([0.0, 0.0, 1.0], np.float32))  # below min_similarity
    assert torch.equal(far["p"], init["p"]) and not bank.weights(np.array([0, 0, 1.0], np.float32)).any()
    assert torch.equal(init["p"], torch.zeros(4))  # the init itself is untouched
    again = VoiceBank.from_arrays(bank.to_arrays())
    assert again.scale == 0.5 and np.array_equal(again.deltas["p"], deltas["p"])


def test_entry_scales_weight_each_entrys_delta_and_survive_saving() -> None:
    centroids = np.eye(3, dtype=np.float32)[:2]
    deltas = {"p": np.stack([np.full(4, 1.0), np.full(4, -2.0)]).astype(np.float32)}
    bank = VoiceBank(centroids, deltas, sharpness=200.0, entry_scales=np.array([0.5, 0.0], np.float32))
    init = {"p": torch.zeros(4)}
    assert torch.allclose(
        bank.start(init, np.array([0.99, 0.1, 0.0], np.float32))["p"], torch.full((4,), 0.5), atol=1e-3
    )
    # An entry whose check found no carry-over (scale 0) leaves its voices at the init.
    assert torch.allclose(bank.start(init, np.array([0.1, 0.99, 0.0], np.float32))["p"], torch.zeros(4), atol=1e-3)
    again = VoiceBank.from_arrays(bank.to_arrays())
    assert again.entry_scales is not None and again.entry_scales.tolist() == [0.5, 0.0]
    older = {k: v for k, v in bank.to_arrays().items() if k != "entry_scales"}  # a bank from before
    assert VoiceBank.from_arrays(older).entry_scales is None
    with pytest.raises(ValueError, match="entry_scales"):
        VoiceBank.from_arrays({**bank.to_arrays(), "entry_scales": np.ones(3, np.float32)})


def test_entry_scale_is_the_largest_that_helps_without_leaving_speakers_worse() -> None:
    from dictation.lab.voice_bank_check import choose_scale, split_members

    helps = {0.5: [-0.03, -0.02, -0.04, -0.01, -0.02], 1.0: [-0.05, -0.04, -0.06, -0.03, -0.05]}
    assert choose_scale(helps) == 1.0
    # The full delta helps on average but leaves 2 of 5 speakers worse: half of it.
    mixed = {0.5: [-0.03, -0.02, -0.04, -0.01, 0.0], 1.0: [-0.2, -0.1, -0.08, 0.03, 0.05]}
    assert choose_scale(mixed) == 0.5
    # Nothing carries over: the init.
    assert choose_scale({0.5: [0.01, -0.005, 0.02], 1.0: [0.04, 0.0, 0.05]}) == 0.0
    assert choose_scale({0.5: [-0.004, -0.002], 1.0: [-0.009, -0.001]}) == 0.0  # under the 1 % gain
    learn, check = split_members(["d", "a", "c", "b", "e"])
    assert learn == ["a", "c", "e"] and check == ["b", "d"]


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def voice_corpus(tmp_path_factory):
    """Speakers of each split (espeak-ng voices), 12 phrases each, named into their split."""
    from dictation.lab.corpus.splits import split_of

    root = tmp_path_factory.mktemp("voice-corpus")
    candidates = iter(f"unit-voice-{i}" for i in range(1000))
    lines = []
    for split, voices in VOICES.items():
        for voice in voices:
            spk = next(n for n in candidates if split_of(n) == split)
            (root / spk).mkdir()
            for i, text in enumerate(SENTENCES):
                tts_wav(text, root / spk / f"{i:02d}.wav", "espeak", voice)
                lines.append(
                    json.dumps(
                        {
                            "audio": f"{spk}/{i:02d}.wav",
                            "text": text,
                            "speaker": spk,
                            "source": "espeak",
                            "licence": "GPL-3.0 (espeak-ng)",
                            "duration": 2.5,
                        }
                    )
                )
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(scope="module")
def voice_bundle(voice_corpus, tmp_path_factory, dictation_cli):
    run = tmp_path_factory.mktemp("voice-run")
    cmd = dictation_cli + [
        "train-voice", "--corpus", str(voice_corpus), "--run-dir", str(run / "run"), "--out", str(run / "bundle"),
        "--head-steps", "40", "--clusters", "2", "--per-cluster", "4", "--bank-steps", "1", "--scale", "0.5",
        "--threads", "1", "--json",
    ]  # fmt: skip
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    return run, first.stdout, again.stdout


def test_train_voice_writes_a_bundle_with_a_voice_space_and_resumes(voice_bundle) -> None:
    from dictation.adapt.voice_space.space import load_voice_space

    run, first, again = voice_bundle
    summary = json.loads(first.strip().splitlines()[-1])
    assert summary["bank_entries"] == 2 and summary["train_speakers"] == 3
    assert 0.0 <= summary["validation_eer"] <= 1.0
    assert "[voice states]" in first and "[voice head]" in first and "[voice bank]" in first
    assert "[voice bank check]" in first
    # 3 training speakers in 2 clusters: one entry has 1 member (nothing to check it on,
    # scale 1), the other is learnt from one member and checked on the other.
    assert len(summary["entry_scales"]) == 2 and set(summary["entry_scales"]) <= {0.0, 0.5, 1.0}
    assert "too few speakers to check" in first and "checked on 1 speakers" in first
    # The rerun finds every stage in the run dir: it reads, trains and adapts nothing again.
    assert "[voice states]" not in again and "[voice head]" not in again and "[voice bank]" not in again
    assert "[voice bank check]" not in again
    assert json.loads(again.strip().splitlines()[-1])["entry_scales"] == summary["entry_scales"]
    assert json.loads(again.strip().splitlines()[-1])["threshold"] == summary["threshold"]
    bundle = run / "bundle"
    assert (bundle / "bundle.json").is_file() and (bundle / "weights.npz").is_file()
    space = load_voice_space(bundle)
    assert space is not None and space.bank is not None and space.bank.scale == 0.5
    assert space.bank.entry_scales is not None and space.bank.entry_scales.tolist() == summary["entry_scales"]
    assert len(space.info["entry_check"]) == 2
    assert space.info["train_speakers"] == 3
    # Every adaptation tensor has one delta per entry, and the deltas are not all zero.
    assert all(v.shape[0] == 2 for v in space.bank.deltas.values())
    assert any(float(np.abs(v).max()) > 0 for v in space.bank.deltas.values())


def test_a_damaged_voice_space_file_is_reported(tmp_path) -> None:
    from dictation.adapt.voice_space.space import VoiceSpaceError, load_voice_space

    assert load_voice_space(tmp_path) is None  # a bundle without one
    (tmp_path / "voice_space.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(VoiceSpaceError, match="voice_space.npz"):
        load_voice_space(tmp_path)


def test_adaptation_starts_from_the_bank_for_the_voice(voice_bundle, voice_corpus) -> None:
    from dictation.adapt.learner import Learner
    from dictation.adapt.model.bundle import load_bundle
    from dictation.adapt.procedure import voice_start
    from dictation.app.audio import load_audio

    run, _, _ = voice_bundle
    spk = sorted(p for p in voice_corpus.iterdir() if p.is_dir())[0]
    takes = [(load_audio(spk / f"{i:02d}.wav"), SENTENCES[i]) for i in range(3)]
    bundle = load_bundle(run / "bundle")
    learner = Learner.from_bundle(bundle)
    start, placed = voice_start(learner, bundle, takes)
    assert start is not None and placed["nearest"] in (0, 1) and 0.5 <= placed["weight"] <= 1.0
    moved = [n for n in learner.names if not torch.equal(start[n], learner.init[n])]
    assert moved, "the bank's start is the init itself"
    # The model is left holding its initial values.
    assert all(torch.equal(v, learner.init[n]) for n, v in learner.values().items())
    plain = load_bundle()
    assert voice_start(Learner.from_bundle(plain), plain, takes) == (None, {})


def test_evaluate_reports_the_voice_space_beside_base_and_maml(voice_bundle, voice_corpus, dictation_cli) -> None:
    run, _, _ = voice_bundle
    base = dictation_cli + [
        "evaluate", "--heldout", "--corpus", str(voice_corpus), "--split", "test", "--bundle", str(run / "bundle"),
        "--n-enroll", "8", "--n-test", "4", "--steps", "1", "--no-finetune", "--no-check", "--beam", "1",
        "--threads", "1", "--json",
    ]  # fmt: skip
    out = subprocess.run(base, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(x) for x in out.stdout.strip().splitlines()]
    rows = [x for x in lines if "speaker" in x]
    summary = next(x["summary"] for x in lines if "summary" in x)
    assert len(rows) == 2
    for r in rows:
        assert 0.0 <= r["voice_space_zero_wer"] <= 2.0 and 0.0 <= r["voice_space_wer"] <= 2.0
        assert "voice_embeddings" not in r
        u = r["utterances"]
        assert sum(u["voice_space_errors"]) / sum(u["words"]) == pytest.approx(r["voice_space_wer"])
    assert 0.0 <= summary["voice_space_eer"] <= 1.0
    assert "mean_voice_space_wer" in summary and "voice_space_relative_gain" in summary
    off = subprocess.run(base + ["--voice-space", "off"], capture_output=True, text=True, timeout=900)
    assert off.returncode == 0, off.stderr[-2000:]
    off_lines = [json.loads(x) for x in off.stdout.strip().splitlines()]
    assert all("voice_space_wer" not in x for x in off_lines if "speaker" in x)
    assert "voice_space_eer" not in next(x["summary"] for x in off_lines if "summary" in x)
