"""Self-healing models (issue 25): a model whose files fail to load is reported once in
plain words and the next good one is used (adapted -> previous -> base); a damaged base
model cache is exported again. Real exported models, copied and then damaged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dictation.app.model_choice import load_model


def copy_model(source: Path, target: Path) -> None:
    """A copy made of hard links (fast, no extra disk); `damage` replaces a file instead of
    writing into it, so the shared original is never touched."""
    shutil.copytree(source, target, copy_function=os.link)


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.unlink()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 3])
    else:  # garble the start: the header every reader parses first
        noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
        path.write_bytes(noise + data[4096:])


@pytest.fixture
def profile(base_model, shared_model_cache, dictation_home, monkeypatch):
    """A profile with an adapted model (model/) and a previous one (model.prev/); the
    base model is the session's export."""
    from dictation.app.profiles import Profile

    monkeypatch.setenv("DICTATION_CACHE", str(shared_model_cache))
    made = Profile.create("anna")
    for sub, version in (("model", 2), ("model.prev", 1)):
        copy_model(base_model, made.path / sub)
        (made.path / sub / "metadata.json").write_text(json.dumps({"version": version}))
    return made


@pytest.mark.parametrize(
    ("damaged", "expected_kind", "details"),
    [
        ({"model": ("encoder.onnx", "truncate")}, "previous", ["encoder.onnx is damaged"]),
        ({"model": ("tokenizer.json", "garble")}, "previous", ["tokenizer.json or config.json is damaged"]),
        (
            {"model": ("decoder.onnx", "garble"), "model.prev": ("decoder.onnx", "garble")},
            "base",
            ["decoder.onnx is damaged", "decoder.onnx is damaged"],
        ),
    ],
)
def test_a_model_that_fails_to_load_falls_back_to_the_next(profile, base_model, damaged, expected_kind, details):
    for sub, (name, how) in damaged.items():
        damage(profile.path / sub / name, how)
    heard = []
    loaded = load_model(profile, beam=1, on_problem=heard.append)
    assert loaded.kind == expected_kind
    assert loaded.model_dir == (base_model if expected_kind == "base" else profile.path / "model.prev")
    assert [p.detail for p in loaded.problems] == details
    assert [p.message for p in heard] == [p.message for p in loaded.problems]
    assert heard[0].message.startswith("The adapted model of profile 'anna' cannot be used")
    tone = (0.1 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 220)).astype(np.float32)
    assert isinstance(loaded.transcriber.transcribe(tone).text, str)
    again: list = []
    assert load_model(profile, beam=1, on_problem=again.append).kind == expected_kind
    assert again == []  # reported once per process, not at every load
    assert (profile.path / "model" / damaged["model"][0]).is_file()  # the user's files stay


def test_cli_transcribes_with_the_previous_model_and_says_why(
    profile, dictation_cli, shared_model_cache, tmp_path, dictation_home
):
    from conftest import tts_wav

    damage(profile.path / "model" / "encoder.onnx", "truncate")
    wav = tts_wav("Good morning and welcome.", tmp_path / "hello.wav")
    env = dict(os.environ, DICTATION_CACHE=str(shared_model_cache), DICTATION_HOME=str(dictation_home))
    result = subprocess.run(
        [*dictation_cli, "transcribe", "--json", "--profile", "anna", str(wav)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == "adapted"
    assert "morning" in json.loads(result.stdout)["text"].lower()
    assert result.stderr.count("cannot be used (encoder.onnx is damaged); using the previous model instead") == 1
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_damaged_base_model_cache_is_rebuilt(base_model, dictation_cli, tmp_path):
    """The cached export's encoder is truncated: `transcribe` says so, exports it again
    (the real export, in a subprocess), says that it does, and transcribes."""
    from conftest import tts_wav

    cache = tmp_path / "cache"
    copy_model(base_model, cache / "models" / base_model.name)
    damage(cache / "models" / base_model.name / "encoder.onnx", "truncate")
    wav = tts_wav("Good morning and welcome.", tmp_path / "hello.wav")
    result = subprocess.run(
        [*dictation_cli, "transcribe", "--json", str(wav)],
        capture_output=True,
        text=True,
        env=dict(os.environ, DICTATION_CACHE=str(cache)),
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert "The base speech model cannot be used (encoder.onnx is damaged); building it again" in result.stderr
    assert "rebuilding the speech model (once, about" in result.stderr
    assert "morning" in json.loads(result.stdout)["text"].lower()
    rebuilt = cache / "models" / base_model.name / "encoder.onnx"
    assert rebuilt.stat().st_size == (base_model / "encoder.onnx").stat().st_size
