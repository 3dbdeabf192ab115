"""Corpus readers on small fixtures written by the tests themselves (real audio files)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dictation.lab.corpus.common import CorpusFormatError
from dictation.lab.corpus.readers import (
    Utterance,
    iter_corpus,
    read_common_voice,
    read_librispeech,
    read_manifest,
    read_pairs_dir,
)


def _tone(path: Path, seconds: float = 0.5, fmt: str | None = None) -> None:
    t = np.arange(int(16000 * seconds)) / 16000
    sf.write(str(path), 0.2 * np.sin(2 * np.pi * 300 * t), 16000, format=fmt)


def test_librispeech_layout(tmp_path: Path) -> None:
    chapter = tmp_path / "train-clean-100" / "19" / "198"
    chapter.mkdir(parents=True)
    (chapter / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 CHAPTER ONE OF TWO\n")
    for i in range(2):
        _tone(chapter / f"19-198-000{i}.flac")
    utts = read_librispeech(tmp_path)
    assert [u.text for u in utts] == ["Northanger abbey", "Chapter one of two"]
    assert {u.speaker for u in utts} == {"librispeech-19"}
    assert all(u.audio_path.is_file() and u.source == "librispeech" for u in utts)
    assert sf.info(str(utts[0].audio_path)).format == "FLAC"
    assert list(iter_corpus(tmp_path)) == utts


def test_librispeech_missing_audio_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "1" / "2").mkdir(parents=True)
    (tmp_path / "1" / "2" / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    with pytest.raises(CorpusFormatError, match="1-2-0000.flac"):
        read_librispeech(tmp_path)
    with pytest.raises(CorpusFormatError, match="no LibriSpeech"):
        read_librispeech(tmp_path / "1" / "nothing")


def test_common_voice_tsv(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    _tone(tmp_path / "clips" / "a.wav")
    _tone(tmp_path / "clips" / "b.wav")
    rows = [
        "client_id\tpath\tsentence\tup_votes\tdown_votes",
        "abcdef0123456789ffff\ta.wav\t“Quoted” words,  here.\t2\t0",
        "99990000aaaabbbbcccc\tb.wav\tSecond speaker.\t3\t0",
        "99990000aaaabbbbcccc\tmissing.wav\tNot on disk.\t3\t0",
    ]
    (tmp_path / "validated.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    utts = read_common_voice(tmp_path)
    assert [u.text for u in utts] == ['"Quoted" words, here.', "Second speaker."]
    assert [u.speaker for u in utts] == ["cv-abcdef0123456789", "cv-99990000aaaabbbb"]
    assert list(iter_corpus(tmp_path)) == utts
    (tmp_path / "validated.tsv").write_text("path\ttext\na.wav\thi\n")
    with pytest.raises(CorpusFormatError, match="lacks columns"):
        read_common_voice(tmp_path)


def test_pairs_dir(tmp_path: Path) -> None:
    d = tmp_path / "alice"
    d.mkdir()
    for name, text in (("p01", "First prompt, read aloud.\n"), ("p02", "Second  one.")):
        _tone(d / f"{name}.wav")
        (d / f"{name}.txt").write_text(text)
    _tone(d / "orphan.wav")  # no transcript: ignored
    utts = read_pairs_dir(d)
    assert [(u.audio_path.name, u.text, u.speaker) for u in utts] == [
        ("p01.wav", "First prompt, read aloud.", "alice"),
        ("p02.wav", "Second one.", "alice"),
    ]
    assert read_pairs_dir(d, speaker="bob")[0].speaker == "bob"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusFormatError, match="no NAME.wav"):
        read_pairs_dir(empty)
    with pytest.raises(CorpusFormatError, match="not a folder"):
        read_pairs_dir(tmp_path / "nope")


def _manifest(tmp_path: Path, lines: list[str]) -> None:
    (tmp_path / "manifest.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_manifest_reader(tmp_path: Path) -> None:
    recs = [
        {
            "audio": f"flite/s{i}/0000.wav",
            "text": f"Text {i}.",
            "speaker": f"s{i}",
            "source": "flite",
            "licence": "BSD",
            "duration": 1.5,
        }
        for i in range(3)
    ]
    _manifest(tmp_path, [json.dumps(r) for r in recs])
    utts = read_manifest(tmp_path)
    assert utts[1] == Utterance(tmp_path / "flite/s1/0000.wav", "Text 1.", "s1", "flite", "BSD", 1.5)
    # A last line still being written (or torn by a crash) is skipped...
    _manifest(tmp_path, [json.dumps(r) for r in recs] + ['{"audio": "x.wav", "te'])
    assert len(read_manifest(tmp_path)) == 3
    # ...a damaged line in the middle is an error naming the line.
    _manifest(tmp_path, [json.dumps(recs[0]), '{"audio": "x.wav"}', json.dumps(recs[1])])
    with pytest.raises(CorpusFormatError, match="manifest.jsonl:2"):
        read_manifest(tmp_path)
    with pytest.raises(CorpusFormatError, match="no manifest.jsonl"):
        read_manifest(tmp_path / "elsewhere")
