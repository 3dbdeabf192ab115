"""Dictation of any length (issue 25): cut at pauses, decoded piece by piece, from a file
through the CLI and from microphone-sized chunks through the incremental API; bad input
(NaN/inf, far over full scale) reported without ending a batch."""

from __future__ import annotations

import json
import os
import subprocess
import threading

import numpy as np
import pytest
import soundfile as sf
from conftest import tts_wav

from dictation.app.audio import load_audio, resample
from dictation.app.segmenter import FRAME, PauseSegmenter
from dictation.app.text import wer

SENTENCES = [
    "The weather will be cold and windy for the rest of the week.",
    "Please remember to buy milk, bread and a dozen eggs on your way home.",
    "Our meeting with the new client has been moved to Thursday morning.",
    "She finished reading the novel in a single evening.",
    "The train to the airport leaves every twenty minutes.",
    "I think we should paint the kitchen a lighter color.",
    "He forgot his umbrella at the restaurant again.",
    "The children built a small castle out of sand and shells.",
    "Could you send me the latest version of the budget?",
    "A strong cup of coffee helps me start the day.",
    "The museum is closed on Mondays and public holidays.",
    "We planted tomatoes, beans and carrots in the garden.",
]
REFERENCE = " ".join(SENTENCES)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """(path, audio): the sentences spoken by espeak-ng with pauses of 0.4-0.9 s between
    them, about 45 s in all, well past the encoder's 30 s window."""
    folder = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(0)
    parts = []
    for i, sentence in enumerate(SENTENCES):
        parts.append(load_audio(tts_wav(sentence, folder / f"{i}.wav")))
        parts.append(np.zeros(int(rng.uniform(0.4, 0.9) * 16000), np.float32))
    audio = np.concatenate(parts)
    assert len(audio) >= 40 * 16000
    path = folder / "long.wav"
    sf.write(path, audio, 16000, subtype="PCM_16")
    return path, load_audio(path)


@pytest.fixture(scope="module")
def transcriber(base_model):
    from dictation.app.runtime import Transcriber

    return Transcriber(base_model, threads=1)


def run_cli(dictation_cli, cache, *args):
    env = dict(os.environ, DICTATION_CACHE=str(cache))
    return subprocess.run([*dictation_cli, *args], capture_output=True, text=True, env=env, timeout=600)


# -- cutting (numpy only) ------------------------------------------------------------------


def test_cuts_fall_inside_pauses_and_lose_nothing(speech):
    """Every sample comes out once, in order, and every cut has silence on both sides:
    no word can be split, dropped or doubled at a cut."""
    _, audio = speech
    for segmenter in (PauseSegmenter(), PauseSegmenter(eager_pause_s=0.4, eager_min_s=3.0)):
        pieces = []
        for start in range(0, len(audio), 1600):  # 100 ms chunks, as from a microphone
            pieces += segmenter.push(audio[start : start + 1600])
        pieces += segmenter.flush()
        assert np.array_equal(np.concatenate([p.audio for p in pieces]), audio)
        assert [p.start for p in pieces] == [0, *[p.end for p in pieces[:-1]]]
        assert all(len(p.audio) <= 25 * 16000 for p in pieces)
        for p in pieces[:-1]:
            assert not p.hard_cut
            around = audio[max(0, p.end - 2 * FRAME) : p.end + 2 * FRAME]
            assert np.max(np.abs(around)) < 1e-3  # the cut lies in silence
    assert len(pieces) >= len(SENTENCES) - 2  # live dictation: cut at (almost) every pause


def test_speech_without_pauses_is_hard_cut_within_the_window():
    noise = (np.random.default_rng(0).standard_normal(60 * 16000) * 0.1).astype(np.float32)
    segmenter = PauseSegmenter()
    pieces = segmenter.push(noise) + segmenter.flush()
    assert np.array_equal(np.concatenate([p.audio for p in pieces]), noise)
    assert all(len(p.audio) <= 25 * 16000 for p in pieces) and pieces[0].hard_cut


def test_an_hour_of_silence_keeps_at_most_a_window_in_memory():
    segmenter = PauseSegmenter()
    block = np.zeros(10 * 16000, np.float32)
    pieces = []
    for _ in range(360):
        pieces += segmenter.push(block)
        assert segmenter.pending_seconds <= 25.0
    assert not any(p.speech for p in pieces + segmenter.flush())  # nothing to decode


def test_files_stream_in_blocks_resampled_as_a_whole(tmp_path):
    """Another rate is resampled block by block with context: the same samples as
    resampling the whole file at once."""
    from dictation.app import audio_file_blocks

    x = (np.random.default_rng(2).standard_normal(int(44100 * 2.3) + 5) * 0.1).astype(np.float32)
    path = tmp_path / "stereo44k.wav"
    sf.write(path, np.stack([x, x], axis=1), 44100, subtype="FLOAT")
    blocks = list(audio_file_blocks.read_blocks(path, block_seconds=0.3))
    assert len(blocks) > 5 and max(len(b) for b in blocks) <= 0.3 * 16000 + 1
    assert np.array_equal(np.concatenate(blocks), resample(x, 44100, 16000))


# -- decoding --------------------------------------------------------------------------------


def test_long_file_through_the_cli(dictation_cli, base_model, shared_model_cache, speech):
    path, _ = speech
    result = run_cli(dictation_cli, shared_model_cache, "transcribe", "--json", str(path))
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["segments"] >= 2 and record["audio_seconds"] >= 40
    assert wer([REFERENCE], [record["text"]]) <= 0.08, record["text"]


def test_incremental_dictation_decodes_pieces_while_the_user_speaks(transcriber, speech):
    from dictation.app.long_transcription import IncrementalDictation

    _, audio = speech
    heard: list[tuple[str, str]] = []
    first_piece = threading.Event()

    def listener(piece, text_so_far):
        heard.append((piece.text, text_so_far))
        first_piece.set()

    dictation = IncrementalDictation(transcriber, beam=1, listener=listener)
    half = len(audio) // 2
    for start in range(0, half, 1600):
        dictation.feed(audio[start : min(half, start + 1600)])
    # Pieces that ended at a pause are decoded in the background while speech goes on.
    assert first_piece.wait(timeout=120)
    assert dictation.text and dictation.text == heard[-1][1]
    for start in range(half, len(audio), 1600):
        dictation.feed(audio[start : start + 1600])
    text = dictation.finish()
    assert wer([REFERENCE], [text]) <= 0.08, text
    assert len(heard) >= 6 and heard[-1][1] == text
    assert " ".join(piece for piece, _ in heard) == text  # partial texts add up to the whole


def test_long_audio_in_one_call_is_cut_instead_of_failing(transcriber, speech):
    """`Transcriber.transcribe` (the GUI's take, the enrollment check) on more than the
    encoder's 30 s: it used to end in an onnxruntime broadcast error."""
    _, audio = speech
    result = transcriber.transcribe(audio, beam=1)
    assert result.segments >= 2 and wer([REFERENCE], [result.text]) <= 0.08, result.text


def test_bad_samples_are_reported_and_loud_input_scaled(transcriber, speech):
    from dictation.app.runtime import InvalidAudioError, speech_bounds

    _, audio = speech
    sentence = audio[: 4 * 16000]
    broken = sentence.copy()
    broken[16000] = np.inf
    with pytest.raises(InvalidAudioError, match=r"NaN or infinite samples \(the first at 1.00 s\)"):
        transcriber.transcribe(broken)
    assert speech_bounds(broken) is None  # no IndexError
    plain = transcriber.transcribe(sentence, beam=1)
    loud = transcriber.transcribe(sentence * 1000, beam=1)
    assert loud.text == plain.text and "times full scale" in loud.warnings[0]


def test_a_batch_goes_on_after_bad_files(dictation_cli, base_model, shared_model_cache, speech, tmp_path):
    _, audio = speech
    sentence = audio[: 4 * 16000]
    files = {}
    for name, samples in {
        "inf": np.concatenate([sentence[:8000], [np.inf], sentence[8000:]]),
        "nan": np.where(np.arange(len(sentence)) % 5000 == 0, np.nan, sentence),
        "loud": sentence * 1000,
        "good": sentence,
    }.items():
        files[name] = tmp_path / f"{name}.wav"
        sf.write(files[name], np.asarray(samples, np.float32), 16000, subtype="FLOAT")
    order = ["inf", "good", "nan", "loud"]
    result = run_cli(dictation_cli, shared_model_cache, "transcribe", "--json", *[str(files[n]) for n in order])
    assert result.returncode == 1 and "Traceback" not in result.stderr
    records = {r["file"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(records) == {str(files["good"]), str(files["loud"])}
    assert records[str(files["loud"])]["text"] == records[str(files["good"])]["text"] != ""
    assert "times full scale" in records[str(files["loud"])]["warnings"][0]
    for name in ("inf", "nan"):
        assert f"error: {files[name]}: the audio holds" in result.stderr


def test_previous_text_goes_before_the_transcript_as_a_prompt(transcriber, speech):
    from dictation.app.runtime import START_OF_PREV

    _, audio = speech
    assert transcriber.prompt_tokens("") == []
    tokens = transcriber.prompt_tokens("We met at noon.")
    assert tokens[0] == START_OF_PREV and transcriber.tokenizer.decode(tokens[1:]) == "We met at noon."
    sentence = audio[: 4 * 16000]
    prompted = transcriber.transcribe(sentence, beam=1, previous_text=" ".join(SENTENCES[5:]) * 3)
    assert wer([SENTENCES[0]], [prompted.text]) <= 0.1, prompted.text
