"""Readers for speech corpora, all yielding the same `Utterance`.

Formats: this project's manifest (`read_manifest`), a folder of `NAME.wav` +
`NAME.txt` pairs (`read_pairs_dir`, also the enrollment/evaluation format),
LibriSpeech (`read_librispeech`) and Common Voice (`read_common_voice`).
Texts go through `clean_transcript`; all-capitals transcripts (LibriSpeech) are
put in sentence case, closer to the cased Whisper-style targets.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dictation.app.text import clean_transcript
from dictation.lab.corpus.common import CorpusFormatError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")


@dataclass(frozen=True)
class Utterance:
    audio_path: Path
    text: str
    speaker: str
    source: str
    licence: str = ""
    duration: float | None = None


def _text(raw: str) -> str:
    text = clean_transcript(raw)
    if text.isupper():
        text = text.lower()
        text = text[:1].upper() + text[1:]
    return text


def read_manifest(corpus_dir: Path) -> list[Utterance]:
    """Every utterance in `<corpus_dir>/manifest.jsonl` (as written by `corpus build`).

    A torn final line (a build killed mid-write) is ignored; any other malformed line
    raises CorpusFormatError naming the line.
    """
    corpus_dir = Path(corpus_dir)
    path = corpus_dir / "manifest.jsonl"
    if not path.is_file():
        raise CorpusFormatError(f"{corpus_dir} has no manifest.jsonl (build it with `dictation corpus build`)")
    lines = path.read_text(encoding="utf-8").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out.append(
                Utterance(
                    corpus_dir / rec["audio"],
                    rec["text"],
                    rec["speaker"],
                    rec["source"],
                    rec.get("licence", ""),
                    rec.get("duration"),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            if i == last and not line.rstrip().endswith("}"):
                continue  # the line being written right now (or torn by a crash)
            raise CorpusFormatError(f"{path}:{i + 1}: malformed manifest line ({exc})") from exc
    return out


def read_pairs_dir(path: Path, speaker: str | None = None, source: str = "pairs") -> list[Utterance]:
    """`NAME.wav` + `NAME.txt` pairs in one folder (sorted); audio without text is ignored.

    The speaker defaults to the folder's name. CorpusFormatError when no pair exists.
    """
    path = Path(path)
    if not path.is_dir():
        raise CorpusFormatError(f"{path} is not a folder")
    out = []
    for audio in sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
        txt = audio.with_suffix(".txt")
        if txt.is_file():
            out.append(Utterance(audio, _text(txt.read_text(encoding="utf-8")), speaker or path.name, source))
    if not out:
        raise CorpusFormatError(f"{path} holds no NAME.wav + NAME.txt pairs")
    return out


def read_librispeech(root: Path) -> list[Utterance]:
    """LibriSpeech layout: `SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt` + `ID.flac`."""
    root = Path(root)
    out = []
    for trans in sorted(root.rglob("*.trans.txt")):
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt_id, _, text = line.strip().partition(" ")
            audio = trans.parent / f"{utt_id}.flac"
            if not text or not audio.is_file():
                raise CorpusFormatError(f"{trans}:{n}: no text or no {audio.name}")
            out.append(Utterance(audio, _text(text), f"librispeech-{utt_id.split('-')[0]}", "librispeech", "CC-BY-4.0"))
    if not out:
        raise CorpusFormatError(f"{root} has no LibriSpeech *.trans.txt files")
    return out


def read_common_voice(root: Path, tsv: str = "validated.tsv") -> list[Utterance]:
    """Common Voice layout: `validated.tsv` (client_id, path, sentence, ...) + `clips/`."""
    root = Path(root)
    table = root / tsv
    if not table.is_file():
        raise CorpusFormatError(f"{root} has no {tsv}")
    out = []
    with open(table, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"client_id", "path", "sentence"} - set(rows.fieldnames or ())
        if missing:
            raise CorpusFormatError(f"{table} lacks columns {sorted(missing)}")
        for row in rows:
            audio = root / "clips" / row["path"]
            if not row["sentence"] or not audio.is_file():
                continue  # Common Voice releases often ship partial clip sets
            out.append(
                Utterance(audio, _text(row["sentence"]), f"cv-{row['client_id'][:16]}", "commonvoice", "CC0-1.0")
            )
    return out


def iter_corpus(path: Path) -> Iterator[Utterance]:
    """Any supported layout under `path`, detected from its files."""
    path = Path(path)
    if (path / "manifest.jsonl").is_file():
        yield from read_manifest(path)
    elif (path / "validated.tsv").is_file():
        yield from read_common_voice(path)
    elif next(path.rglob("*.trans.txt"), None) is not None:
        yield from read_librispeech(path)
    else:
        yield from read_pairs_dir(path)
