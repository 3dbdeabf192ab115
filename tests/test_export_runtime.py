"""Parity-gated ONNX export and the onnxruntime-only transcriber, on the real bundled model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import tts_wav

from dictation.app.runtime import ModelMissingError, Transcriber, speech_bounds, to_mono_16k
from dictation.app.text import wer

PHRASE = "Please send the report to Maria by Friday afternoon."


@pytest.fixture(scope="module")
def transcriber(base_model):
    return Transcriber(base_model, threads=1)


@pytest.fixture(scope="module")
def phrase_audio(tmp_path_factory):
    from dictation.app.audio import load_audio

    path = tts_wav(PHRASE, tmp_path_factory.mktemp("tts") / "phrase.wav", "flite", "slt")
    return path, load_audio(path)


def test_export_records_a_passed_parity_check(base_model):
    info = json.loads((base_model / "model.json").read_text())
    parity = info["parity"]
    assert len(parity["lengths_s"]) >= 3 and len(set(parity["lengths_s"])) == len(parity["lengths_s"])
    # the float graph: strict, same greedy tokens as torch
    assert parity["cross_kv_max_abs"] <= parity["tolerance"]["cross_kv_atol"]
    assert parity["logits_max_abs"] <= parity["tolerance"]["logits_atol"] <= 2e-2
    assert parity["same_greedy_tokens"] and parity["tolerance"]["same_greedy_tokens_required"]
    # the shipped int8 graph: bounded
    q = parity["int8"]
    assert q["graph"] == "decoder.onnx" and q["cross_kv_max_abs"] <= q["tolerance"]["cross_kv_atol"]
    assert q["logits_max_abs"] <= q["tolerance"]["logits_atol"]
    assert q["all_logits_max_abs"] <= q["tolerance"]["all_logits_atol"]
    for name in ("encoder.onnx", "decoder.onnx", "tokenizer.json", "config.json", "embedding.npy", "positions.npy"):
        assert (base_model / name).is_file()


def test_decoder_matrices_are_int8_and_the_embedding_is_kept_once_in_float16(base_model):
    import onnx

    from dictation.adapt.model.bundle import load_bundle

    emb = np.load(base_model / "embedding.npy", mmap_mode="r")
    ref = load_bundle().model.decoder.token_embedding.weight.detach().numpy()
    assert emb.dtype == np.float16 and emb.shape == ref.shape
    assert np.array_equal(emb.astype(np.float32), ref)  # the backbone's float16 values, exactly
    graph = onnx.load(str(base_model / "decoder.onnx"))
    sizes = {i.name: (i.data_type, int(np.prod(i.dims))) for i in graph.graph.initializer}
    big = [v for v in sizes.values() if v[1] >= ref.size]
    assert big == [(onnx.TensorProto.INT8, ref.size)]  # no float copy of the vocabulary matrix
    mats = [v for v in sizes.values() if v[1] >= 384 * 384]
    assert mats and all(t == onnx.TensorProto.INT8 for t, _ in mats)  # every block matrix too


def test_shortlist_rescoring_restores_the_float_choice():
    from dictation.app.decoding import rescore_shortlist, shortlist

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(5000, 64)).astype(np.float16)
    agree = 0
    for _ in range(50):
        h = rng.normal(size=64).astype(np.float32)
        exact = emb.astype(np.float32) @ h
        approx = exact + rng.normal(0, 0.5, size=exact.shape).astype(np.float32)  # int8-like error
        out = rescore_shortlist(approx, h, emb, k=32, margin=2.0)
        short = shortlist(approx, k=32, margin=2.0)
        assert 1 <= short.size <= 32 and np.argmax(approx) in short
        assert np.allclose(out[short], exact[short], atol=1e-4)
        rest = np.setdiff1d(np.arange(len(exact)), short)
        assert np.array_equal(out[rest], approx[rest])  # untouched outside the shortlist
        agree += int(np.argmax(out) == np.argmax(exact))
    assert agree == 50


def test_parity_gate_rejects_a_graph_that_drifted_from_torch(base_model):
    import torch

    from dictation.adapt.export import ExportParityError, check_parity
    from dictation.adapt.model.bundle import load_bundle

    model = load_bundle().model
    with torch.no_grad():  # the torch side now differs from what was exported
        model.encoder.conv1.weight.mul_(1.02)
    with pytest.raises(ExportParityError, match="disagrees with torch"):
        check_parity(model, base_model)


def test_failed_export_leaves_the_previous_model_in_place(base_model, tmp_path, monkeypatch):
    import shutil

    from dictation.adapt import export
    from dictation.adapt.model.bundle import load_bundle

    target = tmp_path / "model"
    shutil.copytree(base_model, target)
    before = (target / "decoder.onnx").stat().st_mtime_ns

    def broken(*args, **kwargs):
        raise export.ExportParityError("simulated drift")

    monkeypatch.setattr(export, "check_parity", broken)
    bdir = __import__("dictation.adapt.model.loader", fromlist=["backbone_dir"]).backbone_dir()
    with pytest.raises(export.ExportParityError):
        export.export_model(load_bundle().model, target, bdir / "tokenizer.json", bdir / "config.json")
    assert (target / "decoder.onnx").stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left behind


def test_transcribes_speech(transcriber, phrase_audio):
    _, audio = phrase_audio
    result = transcriber.transcribe(audio)
    assert wer([PHRASE], [result.text]) <= 0.2, result.text
    assert 0 < result.seconds < 30 and result.audio_seconds == pytest.approx(len(audio) / 16000)
    assert result.text[0].isupper()  # cased output for dictation


def test_decoder_runs_beam_hypotheses_as_one_batch(base_model, transcriber):
    import onnxruntime as ort

    dec = ort.InferenceSession(str(base_model / "decoder.onnx"), providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in dec.get_inputs()}
    assert isinstance(shapes["x"][0], str) and isinstance(shapes["self_k"][1], str)  # symbolic
    assert transcriber.batched
    # the export's parity check ran a batch of two hypotheses against torch, row by row
    info = json.loads((base_model / "model.json").read_text())
    assert info["format_version"] >= 4


def test_beam_search_decodes_speech_batched_or_a_hypothesis_at_a_time(base_model, phrase_audio):
    """Exports before format 4 have a batch of one: the runtime then runs each hypothesis
    alone, and must reach the same text."""
    _, audio = phrase_audio
    batched = Transcriber(base_model, threads=1, beam=4)
    one_at_a_time = Transcriber(base_model, threads=1, beam=4)
    one_at_a_time.batched = False
    text = batched.transcribe(audio).text
    assert wer([PHRASE], [text]) <= 0.2, text
    assert one_at_a_time.transcribe(audio).text == text
    greedy = batched.transcribe(audio, beam=1)
    assert wer([PHRASE], [greedy.text]) <= 0.2 and greedy.tokens


def test_beam_width_is_checked(base_model, transcriber):
    with pytest.raises(ValueError, match="beam must be"):
        Transcriber(base_model, beam=0)
    with pytest.raises(ValueError, match="beam must be"):
        transcriber.transcribe(np.zeros(16000, np.float32), beam=-2)


def test_silence_and_empty_input_give_empty_text(transcriber):
    assert transcriber.transcribe(np.zeros(0, np.float32)).text == ""
    assert transcriber.transcribe(np.zeros(16000 * 2, np.float32)).text == ""
    quiet = (np.random.default_rng(0).standard_normal(16000) * 1e-4).astype(np.float32)
    assert transcriber.transcribe(quiet).text == ""


def test_stereo_and_other_rates_give_the_same_text(transcriber, phrase_audio):
    from dictation.app.audio import resample

    _, audio = phrase_audio
    mono = transcriber.transcribe(audio).text
    stereo_44k = resample(audio, 16000, 44100)
    stereo_44k = np.stack([stereo_44k, stereo_44k], axis=1)
    assert transcriber.transcribe(stereo_44k, sample_rate=44100).text == mono
    pcm16 = (audio * 32767).astype(np.int16)
    assert transcriber.transcribe(pcm16).text == mono


def test_silence_trimming_keeps_the_speech():
    rng = np.random.default_rng(1)
    speech = (rng.standard_normal(16000) * 0.1).astype(np.float32)
    audio = np.concatenate([np.zeros(32000, np.float32), speech, np.zeros(16000, np.float32)])
    start, end = speech_bounds(audio)
    assert 32000 - 3200 <= start <= 32000 and 48000 <= end <= 48000 + 3200 + 320
    with pytest.raises(ValueError):
        to_mono_16k(np.zeros((2, 2, 2)))


def test_incomplete_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(ModelMissingError, match="encoder.onnx is missing"):
        Transcriber(tmp_path)


def test_dictation_path_never_imports_torch(base_model, phrase_audio):
    """Importing the runtime and transcribing must not pull torch into the process."""
    path, _ = phrase_audio
    code = (
        "import sys, json\n"
        "from dictation.app.runtime import Transcriber\n"
        "from dictation.app.audio import load_audio\n"
        f"t = Transcriber(r'{base_model}', threads=1)\n"
        f"r = t.transcribe(load_audio(r'{path}'))\n"
        "print(json.dumps({'text': r.text, 'torch': 'torch' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    assert wer([PHRASE], [result["text"]]) <= 0.2
