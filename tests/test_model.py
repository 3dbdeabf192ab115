"""The backbone loader, the torch front end and the shared decoding rules."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from conftest import tts_wav

from dictation.adapt.features import LogMel
from dictation.adapt.model.ct2_reader import CT2FormatError, read_ct2_model
from dictation.adapt.model.loader import backbone_dir, load_backbone
from dictation.app.decoding import (
    EOT,
    PROMPT,
    SOT,
    DecodingRules,
    greedy_decode,
    load_tokenizer_and_rules,
    repetition_start,
    token_budget,
)

PHRASES = [
    ("Please send the report to Maria by Friday afternoon.", "flite", "slt"),
    ("The meeting has been moved to the second floor conference room.", "espeak", "en-us"),
    ("Remember to buy milk, eggs and bread on the way home.", "flite", "awb"),
]


def _load(path) -> np.ndarray:
    from dictation.app.audio import load_audio

    return load_audio(path)


def test_ct2_reader_reports_truncated_files(tmp_path):
    good = (backbone_dir() / "model.bin").read_bytes()
    bad = tmp_path / "model.bin"
    bad.write_bytes(good[:5000])
    with pytest.raises(CT2FormatError, match="truncated or corrupt"):
        read_ct2_model(bad)
    bad.write_bytes(struct.pack("<I", 99) + good[4:100])
    with pytest.raises(CT2FormatError, match="unsupported CTranslate2 binary version 99"):
        read_ct2_model(bad)


def test_backbone_loads_every_weight_into_our_modules():
    model = load_backbone()
    spec, variables = read_ct2_model(backbone_dir() / "model.bin")
    assert spec == "WhisperSpec"
    emb = torch.from_numpy(variables["decoder/embeddings/weight"].astype(np.float32))
    assert torch.equal(model.decoder.token_embedding.weight, emb)
    # q,k,v are stacked in CTranslate2's linear_0; our key projection must be the middle third
    qkv = variables["encoder/layer_2/self_attention/linear_0/weight"].astype(np.float32)
    assert torch.equal(model.encoder.blocks[2].attn.key.weight, torch.from_numpy(qkv[384:768]))


def test_log_mel_matches_faster_whisper_front_end():
    fw = pytest.importorskip("faster_whisper.feature_extractor", reason="faster-whisper not installed")
    x = (np.random.default_rng(0).standard_normal(16000 * 2) * 0.1).astype(np.float32)
    ref = fw.FeatureExtractor(feature_size=80)(x, padding=0)
    ours = LogMel()(torch.from_numpy(x)[None])[0].numpy()
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-4


def test_a_model_folder_gives_its_tokenizer_and_decoding_rules():
    """The backbone folder (as an exported model's) holds Whisper's tokenizer and its rules."""
    tok, rules = load_tokenizer_and_rules(backbone_dir())
    ids = tok.encode("Hello there.")
    assert ids and tok.decode(ids + [EOT]) == "Hello there."
    assert rules.suppress[SOT:].all() and rules.suppress_begin[EOT] and not rules.suppress[EOT]


@pytest.mark.slow
def test_backbone_reproduces_faster_whisper_greedy_transcripts(tmp_path):
    """Our loader + modules, fed stock 30 s padded input, decode exactly as faster-whisper."""
    fw = pytest.importorskip("faster_whisper", reason="faster-whisper (the reference) not installed")
    from dictation.adapt.model.inference import STOCK_FRAMES, transcribe

    d = backbone_dir()
    model = load_backbone()
    tok, rules = load_tokenizer_and_rules(d)
    ref_model = fw.WhisperModel(str(d), device="cpu", compute_type="float32", cpu_threads=1)
    for i, (text, engine, voice) in enumerate(PHRASES):
        audio = _load(tts_wav(text, tmp_path / f"{i}.wav", engine, voice))
        segs, _ = ref_model.transcribe(
            audio,
            beam_size=1,
            without_timestamps=True,
            temperature=0,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        reference = " ".join(s.text.strip() for s in segs)
        assert transcribe(model, audio, rules, tok, pad_to=STOCK_FRAMES, beam=1) == reference


def test_repetition_guard_cuts_loops_but_keeps_real_repeats():
    phrase = list(range(100, 112))
    assert repetition_start([1, 2, 2]) is None  # "very very" is speech
    assert repetition_start([1, 2, 2, 2]) == 2  # a short unit three times is a loop
    assert repetition_start([7] + phrase + phrase) == 13  # a long unit twice: keep one copy
    assert repetition_start(phrase) is None


def test_greedy_decode_stops_a_runaway_decoder():
    rules = DecodingRules(suppress=np.zeros(51864, bool), suppress_begin=np.zeros(51864, bool))
    seen: list[list[int]] = []

    def looping_step(tokens: list[int]) -> np.ndarray:
        seen.append(tokens)
        logits = np.zeros(51864, np.float32)
        logits[300 + (sum(len(t) for t in seen) % 9)] = 10  # cycles through 9 tokens forever
        return logits

    out = greedy_decode(looping_step, rules, audio_seconds=30.0)
    assert seen[0] == list(PROMPT)
    assert 9 <= len(out) < 20 and repetition_start(out) is None


def test_greedy_decode_respects_suppression_and_budget():
    suppress = np.zeros(51864, bool)
    suppress[500] = True
    rules = DecodingRules(suppress=suppress, suppress_begin=suppress.copy())
    counter = iter(range(10_000))

    def step(tokens):
        logits = np.zeros(51864, np.float32)
        logits[500] = 100  # suppressed: must never be emitted
        logits[1000 + next(counter)] = 50  # always a new token: never a loop
        return logits

    out = greedy_decode(step, rules, audio_seconds=1.0)
    assert 500 not in out and EOT not in out
    assert len(out) == token_budget(1.0)
