"""Meta-training (resumable) and the evaluation command, on a tiny corpus made here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import READ_SENTENCES, tts_wav

SENTENCES = READ_SENTENCES


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    from dictation.lab.corpus.splits import split_of

    root = tmp_path_factory.mktemp("corpus")
    names = [n for n in (f"unit-speaker-{i}" for i in range(40)) if split_of(n) == "train"][:2]
    lines = []
    for spk, voice in zip(names, ["en-us", "en-gb-scotland"]):
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


def _train(cli, corpus, run_dir, out, steps, *extra):
    return subprocess.run(
        cli
        + [
            "train",
            "--corpus",
            str(corpus),
            "--run-dir",
            str(run_dir),
            "--out",
            str(out),
            "--steps",
            str(steps),
            "--tasks-per-step",
            "1",
            "--inner-steps",
            "1",
            "--threads",
            "1",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_training_checkpoints_resumes_and_writes_a_loadable_bundle(dictation_cli, tiny_corpus, tmp_path):
    from dictation.adapt.model.bundle import load_bundle

    run_dir, out = tmp_path / "run", tmp_path / "bundle"
    first = _train(dictation_cli, tiny_corpus, run_dir, out, 1)
    assert first.returncode == 0, first.stderr[-2000:]
    assert (run_dir / "checkpoint.pt").is_file()
    assert "float32 passes" in first.stdout
    second = _train(dictation_cli, tiny_corpus, run_dir, out, 2, "--precision", "bfloat16")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed from step 1" in second.stdout and "bfloat16 passes" in second.stdout
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    assert all(np.isfinite(r["query_loss_adapted"]) for r in log)

    bundle = load_bundle(out)
    assert bundle.info["trained"] is True and bundle.info["inner_steps"] == 1
    assert set(bundle.inner_lrs) == set(bundle.adapt_names)
    with np.load(out / "weights.npz") as z:  # the fine-tuning baseline's starting point is kept
        assert {k for k in z.files if k.startswith("init/")} == {"init/" + n for n in bundle.adapt_names}


@pytest.mark.slow
def test_training_can_widen_the_adapted_blocks_with_task_workers(dictation_cli, tiny_corpus, tmp_path):
    from dictation.adapt.model.bundle import load_bundle

    out = tmp_path / "bundle"
    result = _train(
        dictation_cli,
        tiny_corpus,
        tmp_path / "run",
        out,
        1,
        "--lora-layers",
        "3,4,5,6,7",
        "--workers",
        "1",
        "--support-speed-copies",
        "0.9,1.1",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    bundle = load_bundle(out)
    assert bundle.model.cfg.lora_layers == (3, 4, 5, 6, 7)
    # Trained with speed copies in every support set: users' adaptation is told to add them.
    assert bundle.info["enroll_speed_copies"] == [0.9, 1.1]
    assert bundle.info["training"]["config"]["support_speed_copies"] == [0.9, 1.1]
    enc = [n for n in bundle.adapt_names if n.startswith("encoder.")]
    assert enc and all(n.startswith("encoder.blocks.3.") for n in enc)
    with np.load(out / "weights.npz") as z:
        assert {"init/" + n for n in enc} <= set(z.files)
        assert float(np.abs(z["init/encoder.blocks.3.attn.query.lora_b"]).max()) == 0.0  # stock start


@pytest.mark.slow
def test_training_can_raise_the_encoder_rank_with_second_order_maml(dictation_cli, tiny_corpus, tmp_path):
    from dictation.adapt.model.bundle import load_bundle

    out = tmp_path / "bundle"
    result = _train(dictation_cli, tiny_corpus, tmp_path / "run", out, 1, "--encoder-lora-rank", "16", "--second-order")
    assert result.returncode == 0, result.stderr[-2000:]
    bundle = load_bundle(out)
    assert bundle.model.cfg.encoder_lora_rank == 16
    assert bundle.info["training"]["config"]["second_order"] is True
    named = dict(bundle.model.named_parameters())
    enc_a = [n for n in bundle.adapt_names if n.startswith("encoder.") and n.endswith("lora_a")]
    dec_a = [n for n in bundle.adapt_names if n.startswith("decoder.") and n.endswith("lora_a")]
    assert enc_a and all(named[n].shape[0] == 16 for n in enc_a)
    assert dec_a and all(named[n].shape[0] == bundle.model.cfg.lora_rank for n in dec_a)
    with np.load(out / "weights.npz") as z:
        assert all(z["init/" + n].shape == tuple(named[n].shape) for n in bundle.adapt_names)


@pytest.mark.slow
def test_training_from_stock_starts_at_zero_updates_and_writes_into_the_run_dir(dictation_cli, tiny_corpus, tmp_path):
    from dictation.adapt.model.bundle import load_bundle

    run_dir = tmp_path / "run"
    result = subprocess.run(
        dictation_cli
        + [
            "train",
            "--corpus",
            str(tiny_corpus),
            "--run-dir",
            str(run_dir),
            "--steps",
            "1",
            "--tasks-per-step",
            "1",
            "--inner-steps",
            "1",
            "--threads",
            "1",
            "--from",
            "stock",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = run_dir / "bundle"  # the default: never the shipped model's folder
    trained, shipped = load_bundle(out), load_bundle()
    assert trained.info["training"]["started_from"] == "stock"
    # One Adam step (outer rate 1e-3) from zero LoRA updates: every B is still tiny, where
    # the shipped, meta-trained B factors are far from zero.
    named = {n: v.detach() for n, v in trained.model.named_parameters()}
    shipped_named = {n: v.detach() for n, v in shipped.model.named_parameters()}
    lora_b = [n for n in trained.adapt_names if n.endswith("lora_b")]
    assert lora_b and max(float(named[n].abs().max()) for n in lora_b) < 2e-3
    assert max(float(shipped_named[n].abs().max()) for n in lora_b) > 1e-2
    rates = [float(v) for v in trained.inner_lrs.values()]  # default rate 0.5, one small step from it
    assert all(abs(r - 0.5) < 0.01 for r in rates)


def test_training_from_a_folder_without_a_bundle_is_refused(dictation_cli, tmp_path):
    result = subprocess.run(
        dictation_cli
        + ["train", "--corpus", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--from", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and "no bundle.json" in result.stderr


def _torchrun_train(corpus, run_dir, out, steps, *extra):
    """`dictation train` in two gloo processes on this CPU, as torchrun starts it on GPUs."""
    import sys

    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "dictation",
            "train",
            "--corpus",
            str(corpus),
            "--run-dir",
            str(run_dir),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--steps",
            str(steps),
            "--tasks-per-step",
            "1",
            "--inner-steps",
            "1",
            "--threads",
            "1",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_two_rank_training_draws_distinct_tasks_and_resumes(tiny_corpus, tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "bundle"
    first = _torchrun_train(tiny_corpus, run_dir, out, 1)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    second = _torchrun_train(tiny_corpus, run_dir, out, 2)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    assert "resumed from step 1" in second.stdout
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]  # rank 0 alone writes the log
    # Each step names both ranks' tasks; the ranks drew different ones, after the resume too
    # (rank 1 restoring rank 0's generator from the checkpoint repeated rank 0's tasks).
    assert all(len(r["tasks"]) == 2 for r in log)
    assert all(r["tasks"][0] != r["tasks"][1] for r in log), [r["tasks"] for r in log]
    assert log[0]["tasks"] != log[1]["tasks"]
    assert (out / "weights.npz").is_file()


def test_rank_generators_differ_by_rank_and_by_resume():
    from dictation.lab.meta_tasks import rank_rng

    def draws(rng):
        return [rng.random() for _ in range(3)]

    assert draws(rank_rng(0, 1, 40)) == draws(rank_rng(0, 1, 40))
    assert draws(rank_rng(0, 1, 40)) != draws(rank_rng(0, 2, 40))
    assert draws(rank_rng(0, 1, 40)) != draws(rank_rng(0, 1, 60))


def test_task_support_sets_carry_their_speed_copies(tiny_corpus):
    """`--support-speed-copies`: each support phrase, then its copies (query untouched)."""
    import random

    from dictation.lab.corpus.readers import read_manifest
    from dictation.lab.meta_tasks import TaskSampler, load_task, speakers_by_split
    from dictation.lab.meta_train import TrainConfig

    speakers = speakers_by_split(read_manifest(tiny_corpus), 16)["train"]
    cfg = TrainConfig(support=3, query=2, augment_prob=0.0, support_speed_copies=(0.9, 1.1))
    plan = TaskSampler(speakers, cfg, random.Random(0)).draw()
    _, support, query = load_task(plan)
    assert len(support) == 9 and len(query) == 2
    assert [t for _, t in support] == [t for _, t in support[:3]] * 3
    for (copy, _), (orig, _), factor in zip(support[3:], support[:3] * 2, (0.9,) * 3 + (1.1,) * 3):
        assert len(copy) == pytest.approx(len(orig) / factor, abs=2)
    _, plain, _ = load_task(
        TaskSampler(speakers, TrainConfig(support=3, query=2, augment_prob=0.0), random.Random(0)).draw()
    )
    assert len(plain) == 3


def test_source_weights_steer_which_speakers_tasks_come_from():
    import random
    from collections import Counter

    from dictation.lab.corpus.readers import Utterance
    from dictation.lab.meta_tasks import TaskSampler
    from dictation.lab.meta_train import TrainConfig

    speakers = {
        f"{src}-{i}": [Utterance(Path(f"{src}{i}-{k}.wav"), "text", f"{src}-{i}", src) for k in range(5)]
        for src in ("espeak", "kokoro")
        for i in range(3)
    }

    def shares(weights: dict) -> Counter:
        sampler = TaskSampler(speakers, TrainConfig(support=2, query=2, source_weights=weights), random.Random(0))
        return Counter(sampler.draw()[0].split("-")[0] for _ in range(400))

    assert shares({"espeak": 0.0}) == Counter({"kokoro": 400})
    default = shares(TrainConfig().source_weights)  # espeak 0.5, kokoro 1
    assert 100 < default["espeak"] < 170
    assert shares({"espeak": 3.0})["espeak"] > 260
    with pytest.raises(SystemExit, match="weight 0"):
        TaskSampler(speakers, TrainConfig(source_weights={"espeak": 0, "kokoro": 0}), random.Random(0))


def test_source_weights_flag_parses_and_refuses_bad_values():
    import argparse

    from dictation.cli.lab import parse_source_weights

    assert parse_source_weights("espeak=1.5, kokoro=2") == {"espeak": 1.5, "kokoro": 2.0}
    assert parse_source_weights("") == {}
    for bad in ("espeak", "espeak=x", "espeak=-1", "=2"):
        with pytest.raises(argparse.ArgumentTypeError, match="SOURCE=WEIGHT"):
            parse_source_weights(bad)


def test_bfloat16_training_passes_give_the_float32_outer_gradient_direction(tiny_corpus):
    """`train --precision bfloat16`: the outer gradient (initial values and inner rates) of
    one task under autocast points where float32's does, and autocast really ran."""
    import random

    import torch

    from dictation.adapt.model.bundle import load_bundle
    from dictation.adapt.model.loader import backbone_dir
    from dictation.app.decoding import TextTokenizer
    from dictation.lab.corpus.readers import read_manifest
    from dictation.lab.meta_tasks import TaskSampler, speakers_by_split
    from dictation.lab.meta_train import TrainConfig, task_losses

    torch.manual_seed(0)
    cfg = TrainConfig(support=4, query=2, inner_steps=2, augment_prob=0.0)
    speakers = speakers_by_split(read_manifest(tiny_corpus), 16)["train"]
    _, support, query = TaskSampler(speakers, cfg, random.Random(1)).sample()
    bundle = load_bundle()
    model = bundle.model.eval()
    for q in model.parameters():
        q.requires_grad_(False)
    named = dict(model.named_parameters())
    tok = TextTokenizer(backbone_dir() / "tokenizer.json")
    out = {}
    for precision in ("float32", "bfloat16"):
        params = {n: torch.nn.Parameter(named[n].detach().clone()) for n in bundle.adapt_names}
        lrs = {n: torch.nn.Parameter(bundle.inner_lrs[n].clone()) for n in bundle.adapt_names}
        lq, lb = task_losses(model, tok, params, lrs, support, query, cfg, precision, "cpu")
        (lq + cfg.base_weight * lb).backward()
        assert lq.dtype == torch.float32 and all(v.grad.dtype == torch.float32 for v in params.values())
        out[precision] = (
            float(lq.detach()),
            torch.cat([v.grad.flatten() for v in params.values()]),
            torch.cat([v.grad.flatten() for v in lrs.values()]),
        )
    (l32, g32, r32), (l16, g16, r16) = out["float32"], out["bfloat16"]
    assert l16 == pytest.approx(l32, rel=0.03)
    assert not torch.equal(g16, g32)  # the passes did run in bfloat16
    for a, b in ((g32, g16), (r32, r16)):
        assert float(a @ b / (a.norm() * b.norm())) > 0.99


@pytest.fixture(scope="module")
def corpus_with_validation(tiny_corpus, tmp_path_factory):
    """tiny_corpus plus one validation-split speaker, so training scores validation tasks."""
    import shutil

    from dictation.lab.corpus.splits import split_of

    root = tmp_path_factory.mktemp("corpus-val")
    shutil.copytree(tiny_corpus, root, dirs_exist_ok=True)
    spk = next(n for n in (f"unit-speaker-{i}" for i in range(200)) if split_of(n) == "validation")
    (root / spk).mkdir()
    lines = []
    for i, text in enumerate(SENTENCES):
        tts_wav(text, root / spk / f"{i:02d}.wav", "espeak", "en-gb-x-rp")
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
    with open(root / "manifest.jsonl", "a") as f:
        f.write("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_rebaseline_scores_the_resumed_model_before_training_on(dictation_cli, corpus_with_validation, tmp_path):
    from dictation.adapt.model.bundle import load_bundle

    run_dir, out = tmp_path / "run", tmp_path / "bundle"
    first = _train(dictation_cli, corpus_with_validation, run_dir, out, 1, "--eval-every", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    assert load_bundle(out).info["training"]["step"] == 1  # the first validation score is a best
    second = _train(dictation_cli, corpus_with_validation, run_dir, out, 2, "--eval-every", "1", "--rebaseline")
    assert second.returncode == 0, second.stderr[-2000:]
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    step1, rebase, step2 = log

    def score(r):
        return r["val_loss_adapted"] + 0.5 * r["val_loss_base"]

    # Same checkpoint, same validation tasks: the re-measured best is the step-1 score.
    assert rebase["rebaseline"] is True and rebase["step"] == 1
    # Per-source validation: the tasks' own sources, their losses averaging to the overall.
    by_source = rebase["val_by_source"]
    assert set(by_source) == {"espeak"}
    assert sum(n for _, _, n in by_source.values()) == rebase["val_tasks"]
    assert sum(b * n for b, _, n in by_source.values()) / rebase["val_tasks"] == pytest.approx(
        rebase["val_loss_base"], abs=1e-3
    )
    assert score(rebase) == pytest.approx(score(step1), abs=1e-4)
    written = load_bundle(out).info["training"]["step"]
    assert written == (2 if score(step2) < score(rebase) else 1)


def test_export_checkpoint_writes_the_run_as_a_bundle_without_training(dictation_cli, corpus_with_validation, tmp_path):
    from dictation.adapt.model.bundle import load_bundle

    run_dir, out = tmp_path / "run", tmp_path / "bundle"
    refused = _train(dictation_cli, corpus_with_validation, run_dir, out, 1, "--export-checkpoint")
    assert refused.returncode != 0 and "no checkpoint" in refused.stderr
    trained = _train(dictation_cli, corpus_with_validation, run_dir, out, 2, "--eval-every", "100")
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert not out.exists()  # never scored, so never a best: no bundle
    exported = _train(dictation_cli, corpus_with_validation, run_dir, out, 5, "--export-checkpoint")
    assert exported.returncode == 0, exported.stderr[-2000:]
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 2] and log[-1]["exported_checkpoint"] is True
    info = load_bundle(out).info["training"]
    assert info["step"] == 2  # the checkpoint's, not --steps
    assert info["val_loss_adapted"] == pytest.approx(log[-1]["val_loss_adapted"])
    assert set(info["val_by_source"]) == {"espeak"}


@pytest.mark.slow
def test_rebaseline_on_a_fresh_run_scores_the_starting_bundle(dictation_cli, corpus_with_validation, tmp_path):
    """A fresh run that continues the bundle writes one only when a step beats its start."""
    run_dir, out = tmp_path / "run", tmp_path / "bundle"
    result = _train(
        dictation_cli, corpus_with_validation, run_dir, out, 1, "--eval-every", "1", "--rebaseline", "--eval-tasks", "2"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    start, step1 = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert start["rebaseline"] is True and start["step"] == 0
    assert start["val_tasks"] == step1["val_tasks"] == 2

    def score(r):
        return r["val_loss_adapted"] + 0.5 * r["val_loss_base"]

    assert (out / "bundle.json").is_file() == (score(step1) < score(start))


def test_missing_corpus_is_reported(dictation_cli, tmp_path):
    result = _train(dictation_cli, tmp_path / "nowhere", tmp_path / "run", tmp_path / "b", 1)
    assert result.returncode != 0
    assert "manifest.jsonl" in result.stderr


@pytest.mark.slow
def test_evaluate_reports_base_adapted_and_finetune(dictation_cli, tiny_corpus, tmp_path):
    spk = sorted(p for p in tiny_corpus.iterdir() if p.is_dir())[0]
    enroll, test = tmp_path / "enroll", tmp_path / "test"
    for d, idx in ((enroll, range(0, 4)), (test, range(4, 6))):
        d.mkdir()
        for i in idx:
            (d / f"{i:02d}.wav").write_bytes((spk / f"{i:02d}.wav").read_bytes())
            (d / f"{i:02d}.txt").write_text(SENTENCES[i])
    out = subprocess.run(
        dictation_cli
        + ["evaluate", "--enroll", str(enroll), "--test", str(test), "--steps", "2", "--json", "--threads", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for key in (
        "base_wer",
        "adapted_wer",
        "finetune_wer",
        "adapt_seconds",
        "n_enroll",
        "n_test",
        "gated_wer",
        "gate_installed",
        "check_before_wer",
        "check_after_wer",
    ):
        assert key in res
    # The app's rule, on the cross-validated check of the enrollment phrases.
    from dictation.adapt.worker import decide_install

    assert res["gate_installed"] == decide_install(res["check_before_wer"], res["check_after_wer"])[0]
    assert res["gated_wer"] == (res["adapted_wer"] if res["gate_installed"] else res["base_wer"])
    assert (res["n_enroll"], res["n_test"]) == (4, 2)
    assert 0.0 <= res["base_wer"] <= 1.0 and res["adapt_seconds"] > 0
    assert len(res["adapt_losses"]) == 2 and res["adapt_losses"][1] < res["adapt_losses"][0]
    u = res["utterances"]  # per test phrase, summing to the speaker's WERs
    assert len(u["words"]) == len(u["base_errors"]) == len(u["adapted_errors"]) == 2
    assert sum(u["base_errors"]) / sum(u["words"]) == pytest.approx(res["base_wer"])
    assert sum(u["adapted_errors"]) / sum(u["words"]) == pytest.approx(res["adapted_wer"])
    # As the app: the bundle's speed copies of the enrollment phrases.
    from dictation.app.base_model import bundled_model_dir

    bundle_info = json.loads((bundled_model_dir() / "bundle.json").read_text())
    assert res["speed_copies"] == bundle_info.get("enroll_speed_copies", [])
    from dictation.app.decoding import DEFAULT_BEAM

    assert res["beam"] == DEFAULT_BEAM  # decoded as the app decodes
    from dictation.adapt.inner_loop import resolve_precision

    assert res["precision"] == resolve_precision(bundle_info.get("inner_precision", "float32"))  # adapted as the app
    quick = subprocess.run(
        dictation_cli
        + [
            "evaluate",
            "--enroll",
            str(enroll),
            "--test",
            str(test),
            "--steps",
            "1",
            "--json",
            "--threads",
            "1",
            "--no-finetune",
            "--no-check",
            "--beam",
            "1",
            "--precision",
            "float32",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert quick.returncode == 0, quick.stderr[-2000:]
    quick_res = json.loads(quick.stdout.strip().splitlines()[-1])
    assert "adapted_wer" in quick_res and "finetune_wer" not in quick_res and "gated_wer" not in quick_res
    assert quick_res["beam"] == 1 and quick_res["precision"] == "float32"


def test_heldout_speakers_are_chosen_and_unknown_ones_refused(tiny_corpus):
    """`evaluate --heldout`'s speakers: the split's, sorted, cut at --max-speakers; names
    asked for that the split lacks (or without enough phrases) are refused by name."""
    from dictation.lab.heldout import heldout_speakers

    both = heldout_speakers(tiny_corpus, "train", 16, [])
    assert len(both) == 2 and list(both) == sorted(both)
    first, second = both
    assert list(heldout_speakers(tiny_corpus, "train", 16, [], max_speakers=1)) == [first]
    assert list(heldout_speakers(tiny_corpus, "train", 16, [second, first])) == [second, first]
    assert heldout_speakers(tiny_corpus, "train", 17, []) == {}
    with pytest.raises(ValueError, match=f"not in the train split with enough utterances: nobody, {first}"):
        heldout_speakers(tiny_corpus, "train", 17, ["nobody", first])


def test_evaluate_speed_copies_flag(dictation_cli):
    from dictation.cli.lab import parse_speed_copies

    assert parse_speed_copies("none") == () and parse_speed_copies("") == ()
    assert parse_speed_copies("0.9,1.1") == (0.9, 1.1)
    for bad in ("fast", "1.0", "0.9,3"):
        out = subprocess.run(
            dictation_cli + ["evaluate", "--speed-copies", bad, "--heldout"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 2 and "--speed-copies" in out.stderr, out.stderr[-500:]


def test_relative_gain_has_a_bootstrap_interval_over_speakers():
    from dictation.lab.compare import relative_gain_ci

    same = [{"base_wer": b, "adapted_wer": b / 2} for b in (0.1, 0.2, 0.4)]
    gain, (lo, hi) = relative_gain_ci(same)
    assert gain == pytest.approx(0.5) and lo == pytest.approx(0.5) and hi == pytest.approx(0.5)
    mixed = [{"base_wer": 0.2, "adapted_wer": a} for a in (0.1, 0.1, 0.3, 0.2, 0.15, 0.25)]
    gain, (lo, hi) = relative_gain_ci(mixed)
    assert gain == pytest.approx(1 - 0.1833333 / 0.2, abs=1e-6)
    assert lo < 0 < gain < hi  # one speaker much worse: the interval takes in no gain
    assert relative_gain_ci(mixed) == (gain, [lo, hi])  # reproducible


def test_worse_probability_tells_a_one_word_change_from_a_consistent_one():
    from dictation.lab.report import markdown_table, summarize, worse_probability

    words = [10] * 15

    def row(name, base, adapted):
        return {
            "speaker": name,
            "source": "espeak",
            "base_wer": sum(base) / 150,
            "adapted_wer": sum(adapted) / 150,
            "adapt_seconds": 1.0,
            "utterances": {"words": words, "base_errors": base, "adapted_errors": adapted},
        }

    consistent = row("consistent", [1] * 15, [2] * 15)  # one more error in every phrase
    one_word = row("one-word", [1] * 15, [2] + [1] * 14)  # 15 -> 16 errors: > 2 % worse, barely
    better = row("better", [2] * 15, [1] * 15)
    assert worse_probability(consistent) == 1.0
    assert worse_probability(better) == 0.0
    assert 0.2 < worse_probability(one_word) < 0.95
    summary = summarize([consistent, one_word, better])
    assert summary["worse_than_base"] == ["consistent", "one-word"]
    assert summary["worse_than_base_95"] == ["consistent"]
    assert "worse in >= 95 % of resamples of their test phrases: 1" in markdown_table(
        [consistent, one_word, better], summary
    )


def test_word_errors_count_per_phrase_on_normalised_text():
    from dictation.app.text import wer, word_errors

    refs, hyps = ["Turn left at the bakery.", "It is 7 pm"], ["turn right at the bakery", "it is seven pm"]
    assert word_errors(refs, hyps) == [(1, 5), (0, 4)]
    assert wer(refs, hyps) == pytest.approx(1 / 9)


def test_outer_rate_warms_up_linearly_then_stays_at_the_full_rate():
    from dictation.lab.meta_train import outer_rate_scale

    assert [outer_rate_scale(s, 4) for s in (1, 2, 3, 4, 5, 100)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert outer_rate_scale(1, 0) == 1.0  # no warm-up: the full rate from the first step


def _heldout_line(speaker, source, base, adapted, words=(10, 10)):
    return json.dumps(
        {
            "speaker": speaker,
            "source": source,
            "n_test": len(words),
            "base_wer": base,
            "adapted_wer": adapted,
            "utterances": {"words": list(words)},
        }
    )


def test_compare_pairs_two_heldout_runs_by_speaker(tmp_path, dictation_cli):
    from dictation.lab.compare import compare, read_rows

    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text(
        "\n".join(
            [
                _heldout_line("a", "espeak", 0.20, 0.10),
                _heldout_line("b", "espeak", 0.20, 0.20),
                _heldout_line("c", "fotaq", 0.10, 0.10),
                _heldout_line("gone", "fotaq", 0.1, 0.1),
                json.dumps({"summary": {"speakers": 4}}),
            ]
        )
        + "\n"
    )
    new.write_text(
        "progress line\n"
        + "\n".join(
            [
                _heldout_line("a", "espeak", 0.20, 0.08),
                _heldout_line("b", "espeak", 0.18, 0.22),
                _heldout_line("c", "fotaq", 0.10, 0.10),
            ]
        )
        + "\n"
    )
    result = compare(read_rows(old), read_rows(new))
    assert result["speakers"] == 3 and result["only_old"] == ["gone"] and result["only_new"] == []
    all_ = result["sources"]["all"]
    assert all_["adapted_wer"]["old"] == pytest.approx(0.4 / 3) and all_["adapted_wer"]["new"] == pytest.approx(0.4 / 3)
    assert all_["adapted_wer"]["diff"] == pytest.approx(0.0, abs=1e-12)
    lo, hi = all_["adapted_wer"]["diff_ci95"]
    assert lo < 0 < hi  # one speaker better, one worse: the interval takes in no change
    assert all_["adapted_new_vs_old"] == {"better": ["a"], "worse": ["b"]}
    assert all_["worse_than_base"] == {"old": [], "new": ["b"]}
    assert result["sources"]["espeak"]["relative_gain"]["old"] == pytest.approx(0.25)
    assert result["sources"]["espeak"]["relative_gain"]["new"] == pytest.approx(1 - 0.15 / 0.19)
    out = subprocess.run(
        dictation_cli + ["evaluate", "--compare", str(old), str(new)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-500:]
    assert "| all | 3 |" in out.stdout and "1 / 1 / 1 |" in out.stdout
    assert "worse than base by > 2 % relative: b" in out.stdout


def test_compare_refuses_runs_on_other_test_phrases(tmp_path, dictation_cli):
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text(_heldout_line("a", "espeak", 0.2, 0.1, words=(10, 12)) + "\n")
    new.write_text(_heldout_line("a", "espeak", 0.2, 0.1, words=(10, 9)) + "\n")
    out = subprocess.run(
        dictation_cli + ["evaluate", "--compare", str(old), str(new)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "not the same test phrases for: a" in out.stderr
    (tmp_path / "empty.jsonl").write_text('{"summary": {}}\n')
    out = subprocess.run(
        dictation_cli + ["evaluate", "--compare", str(old), str(tmp_path / "empty.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "no per-speaker lines" in out.stderr
