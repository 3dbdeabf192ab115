"""Enrollment prompts and the take check, on real synthesized speech and the real runtime."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dictation.app import enrollment
from dictation.app.enrollment import EnrollmentError, check_take, load_prompts


def speech(text: str, tmp_path: Path) -> np.ndarray:
    """`text` spoken by flite's 16 kHz 'slt' voice (Debian package `flite`)."""
    if shutil.which("flite") is None:
        message = "flite (apt-get install flite) is needed to synthesize test speech"
        if os.environ.get("DICTATION_REQUIRE_AUDIO") == "1":
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path / f"{abs(hash(text))}.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(out)], check=True)
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 16000
    return audio


# -- prompts ------------------------------------------------------------------------------


def test_prompt_set_is_large_unique_and_starts_with_the_core_group():
    prompts = load_prompts()
    assert len(prompts) >= 30
    assert len({p.id for p in prompts}) == len(prompts)
    assert len({p.text for p in prompts}) == len(prompts)
    assert [p.group for p in prompts[:10]] == ["core"] * 10
    assert all(3 <= len(p.text.split()) <= 16 for p in prompts), "prompts are short sentences"
    # Dictation-like material: questions, digits-worthy numbers, names, punctuation.
    texts = " ".join(p.text for p in prompts)
    assert sum(p.text.endswith("?") for p in prompts) >= 5
    for mark in (",", ";", ":", "'", "-", "!"):
        assert mark in texts


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not readable JSON"),
        ('{"prompts": []}', "no 'prompts' list"),
        ('{"prompts": [{"id": "a"}]}', "non-empty 'id' and 'text'"),
        ('{"prompts": [{"id": "a", "text": "x y"}, {"id": "a", "text": "z"}]}', "duplicate"),
    ],
)
def test_bad_prompt_files_give_a_clear_error(tmp_path, content, message):
    path = tmp_path / "prompts.json"
    path.write_text(content)
    with pytest.raises(EnrollmentError, match=message):
        load_prompts(path)


def test_missing_prompt_file(tmp_path):
    with pytest.raises(EnrollmentError, match="not found"):
        load_prompts(tmp_path / "nope.json")


# -- signal checks (no model) -------------------------------------------------------------

PROMPT = "Could you measure the garage door before Thursday at noon?"


def test_silence_is_rejected():
    result = check_take(np.zeros(16000 * 3, np.float32), PROMPT)
    assert result.problem == "silent"
    assert "Nothing was heard" in result.reason
    assert not result.ok


def test_low_noise_is_silence_not_speech():
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(16000 * 3) * 1e-4).astype(np.float32)  # -80 dBFS hiss
    assert check_take(noise, PROMPT).problem == "silent"


def test_too_short(tmp_path):
    clip = speech("Could you", tmp_path)
    result = check_take(clip, PROMPT)
    assert result.problem == "too_short"
    assert result.quality["duration"] < enrollment.min_seconds(PROMPT)


def test_too_quiet(tmp_path):
    clip = speech(PROMPT, tmp_path)
    quiet = clip / np.abs(clip).max() * 10 ** (-42 / 20)  # peaks at -42 dBFS
    result = check_take(quiet, PROMPT)
    assert result.problem == "too_quiet"
    assert "louder" in result.reason


def test_clipped(tmp_path):
    clip = speech(PROMPT, tmp_path)
    loud = np.clip(clip * 30, -1, 1)
    result = check_take(loud, PROMPT)
    assert result.problem == "clipped"
    assert result.quality["clipped_fraction"] > 0.001


def test_good_take_passes_signal_checks_and_keeps_measurements(tmp_path):
    result = check_take(speech(PROMPT, tmp_path), PROMPT)
    assert result.ok and result.problem is None
    assert set(result.quality) >= {"duration", "rms_dbfs", "peak", "clipped_fraction"}
    json.dumps(result.quality)  # saved with the take as JSON


def test_stereo_input_is_accepted(tmp_path):
    clip = speech(PROMPT, tmp_path)
    assert check_take(np.stack([clip, clip], axis=1), PROMPT).ok


# -- misread check (real onnxruntime transcriber) -----------------------------------------


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory):
    from dictation.app.base_model import base_model_dir
    from dictation.app.runtime import Transcriber

    # The base model is exported into a module-wide cache once, whatever the test's home.
    # Same path as tests/test_gui*.py use, so one export serves all of them.
    cache = tmp_path_factory.getbasetemp() / "gui-model-cache"
    cache.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DICTATION_CACHE", str(cache))
        return Transcriber(base_model_dir(), threads=1)


def test_correct_reading_passes_the_misread_check(tmp_path, transcriber):
    result = check_take(speech(PROMPT, tmp_path), PROMPT, transcriber=transcriber)
    assert result.ok, result.reason
    assert result.quality["cer"] <= enrollment.MAX_CER
    assert "garage" in result.quality["transcript"].lower()


def test_reading_another_sentence_is_a_misread(tmp_path, transcriber):
    other = speech("She poured a cup of strong coffee and read the morning news.", tmp_path)
    result = check_take(other, PROMPT, transcriber=transcriber)
    assert result.problem == "misread"
    assert result.quality["cer"] > enrollment.MAX_CER
    assert "coffee" in result.reason.lower()  # the user sees what was heard
