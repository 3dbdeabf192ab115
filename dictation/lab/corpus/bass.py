"""Beneath a Steel Sky speech clips mapped to their transcripts and characters.

The game's data (Debian `beneath-a-steel-sky`, CD version 0.0372, freeware) is read with
`bass_format` (index, RNC unpacking, Huffman text). A line is text number
`section << 12 | n`; its speech is file `50000 + SPEECH_BASE[section] + n` (when the
game has one), unsigned 8-bit mono PCM at 11025 Hz after the 22-byte header.

Who speaks a line comes from the game's scripts (files 60400...): 16-bit LE words, a
table of script offsets, then byte code. `push_number v` is (2, v), `push_variable i`
is (0, 4 * i), and `call_mcode` is (11, argument count, 4 * function). The speech
functions 35-38 take (speaker compact id, text number, animation). Only two cases are
trusted: the speaker is a constant compact id (named by `sky.cpt`, ScummVM's export of
the game's compact data: u16 version, u16 list count, u16 list lengths, u32 raw and
source word counts, per compact u16 size [+ u16 type + size words], u32 name bytes,
NUL-separated names in compact order), or function 36 (speak, direction-linked: the
player's own speech) with the current compact, which is Foster. Lines spoken by "the
person being talked to" (a variable) or by whoever runs the script are left out, as are
lines two speakers share. Speakers are named by compact, with the `scNN_` scene prefix
dropped so one character seen in several scenes is one speaker.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dictation.app.text import clean_transcript
from dictation.lab.corpus.bass_format import HEADER, TEXT_FILE_BASE, Archive, FormatError, section_messages
from dictation.lab.corpus.common import EngineUnavailable, cache_root

LICENCE = "Beneath a Steel Sky: (C) Revolution Software, free redistribution (Beneath-a-Steel-Sky-License)"
INSTALL_HINT = (
    "Beneath a Steel Sky data not found: `apt-get install beneath-a-steel-sky` "
    "(or `apt-get download beneath-a-steel-sky && dpkg -x beneath-a-steel-sky_*.deb DIR` "
    "and set DICTATION_BASS=DIR/usr/share/scummvm/beneath-a-steel-sky)"
)
CLIP_RATE = 11025  # the game's speech clips (the build resamples them to the app's rate)
SPEECH_FILE_BASE = 50000
SPEECH_BASE = (0, 600, 1100, 2430, 3380, 4530, 5080, 5230)  # first speech file per section
SPEECH_SECTIONS = 7  # section 7 is the control panel
MODULE_FILES = range(60400, 60416)
FOSTER = 3  # the player's compact
SPEAK_FUNCTIONS = (35, 36, 37, 38)
SPEAK_DIR = 36
CUR_ID_VAR = 12
_ONE_OPERAND = {0, 2, 5, 6, 9, 15, 16, 18}
# Acronyms the game writes in capitals that are also spoken letter by letter or as a word.
_KEEP_CAPS = {"I", "LINC", "OK", "TV", "ID", "D", "PC", "ESP", "CPU", "UK", "USA"}


def data_candidates() -> list[Path]:
    env = os.environ.get("DICTATION_BASS")
    paths = [Path(env)] if env else []
    paths += [
        Path("/usr/share/scummvm/beneath-a-steel-sky"),
        Path("/usr/share/games/beneath-a-steel-sky"),
        cache_root() / "sources" / "bass",
    ]
    return paths


def find_data() -> Path:
    """The folder holding `sky.dnr`, `sky.dsk` and `sky.cpt`, or EngineUnavailable."""
    for p in data_candidates():
        if all((p / n).is_file() for n in ("sky.dnr", "sky.dsk", "sky.cpt")):
            return p
    raise EngineUnavailable(INSTALL_HINT)


def open_archive(folder: Path) -> Archive:
    return Archive(folder / "sky.dnr", folder / "sky.dsk")


def compact_names(cpt: bytes) -> dict[int, str]:
    """Compact id (list << 12 | index) -> name, from `sky.cpt`."""
    try:
        version, lists = struct.unpack("<HH", cpt[:4])
        if version != 0:
            raise FormatError(f"unknown sky.cpt version {version}")
        lens = struct.unpack(f"<{lists}H", cpt[4 : 4 + 2 * lists])
        pos = 4 + 2 * lists
        _raw, src_words = struct.unpack("<II", cpt[pos : pos + 8])
        src = cpt[pos + 8 : pos + 8 + 2 * src_words]
        pos += 8 + 2 * src_words
        (ascii_len,) = struct.unpack("<I", cpt[pos : pos + 4])
        strings = cpt[pos + 4 : pos + 4 + ascii_len].split(b"\0")
    except struct.error as exc:
        raise FormatError(f"truncated sky.cpt: {exc}") from exc
    out, q, k = {}, 0, 0
    for lst, n in enumerate(lens):
        for i in range(n):
            (size,) = struct.unpack("<H", src[q : q + 2])
            q += 2
            if size:
                q += 2 + 2 * size
                out[lst << 12 | i] = strings[k].decode("latin-1")
                k += 1
    return out


def speech_calls(module: bytes) -> list[tuple[int, int, int]]:
    """(function, speaker, text) for each speech call whose speaker the code pins down.

    speaker is a compact id, or -1 for "the current compact" (push_variable CUR_ID).
    Scans the words linearly: the three pushes just before `call_mcode 3, f` are its
    arguments; anything else in those slots (arithmetic, compact fields) is skipped.
    """
    w = struct.unpack(f"<{len(module) // 2}H", module[: len(module) // 2 * 2])
    out = []
    for i in range(6, len(w) - 2):
        if w[i] != 11 or w[i + 1] != 3 or w[i + 2] % 4 or w[i + 2] // 4 not in SPEAK_FUNCTIONS:
            continue
        who, text, anim = w[i - 6 : i - 4], w[i - 4 : i - 2], w[i - 2 : i]
        if text[0] != 2 or anim[0] not in (0, 2):
            continue
        if who[0] == 2:
            out.append((w[i + 2] // 4, who[1], text[1]))
        elif who == (0, 4 * CUR_ID_VAR):
            out.append((w[i + 2] // 4, -1, text[1]))
    return out


def speaker_name(compact: str) -> str:
    return re.sub(r"^sc\d+_", "", compact).lower()


def speakers_of(archive: Archive, names: dict[int, str]) -> dict[int, str]:
    """Text number -> speaker for the lines the scripts attribute without doubt."""
    seen: dict[int, set[str]] = {}
    for number in MODULE_FILES:
        if number not in archive.index:
            continue
        for func, who, text in speech_calls(archive.read(number)):
            if who == -1:
                name = "foster" if func == SPEAK_DIR else None
            else:
                name = speaker_name(names[who]) if who in names else None
            if name:
                seen.setdefault(text, set()).add(name)
    return {t: next(iter(s)) for t, s in seen.items() if len(s) == 1}


def speech_file(text_number: int) -> int:
    return SPEECH_FILE_BASE + SPEECH_BASE[text_number >> 12] + (text_number & 0xFFF)


def proper_nouns(messages: list[bytes]) -> frozenset[str]:
    """Words the game writes capitalised inside a sentence (names), to restore after unshouting."""
    out = set()
    for raw in messages:
        out.update(re.findall(r"(?<=[a-z,] )[A-Z][a-z]+", raw.decode("latin-1")))
    return frozenset(out)


def clean_line(raw: bytes, proper: frozenset[str] = frozenset()) -> str:
    """The spoken words of a message, or "" when it is not a sentence someone says."""
    text = raw.decode("latin-1")
    if re.search(r"[^\x20-\x7e]", text):  # control bytes or accented font glyphs
        return ""
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>", " ", text)  # stage directions, markup
    if re.search(r"[#*+=^`{}|~\\@_$]", text):
        return ""

    def unshout(m: re.Match[str]) -> str:
        word = m.group(0)
        if word in _KEEP_CAPS:
            return word
        if word.startswith("I'"):  # I'M, I'LL, I'VE
            return "I" + word[1:].lower()
        return word.capitalize() if word.capitalize() in proper else word.lower()

    if re.search(r"[a-z]", text):  # capitals mark emphasis in mixed-case lines
        text = re.sub(r"\b[A-Z][A-Z']+\b", unshout, text)
    else:
        text = text.lower().capitalize()
    text = clean_transcript(text)
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text if len(re.findall(r"[A-Za-z]", text)) >= 2 else ""


@dataclass(frozen=True)
class Clip:
    text_number: int
    speech_file: int
    character: str
    text: str

    @property
    def name(self) -> str:
        return f"{self.text_number >> 12}-{self.text_number & 0xFFF:04d}"


def clips(folder: Path) -> list[Clip]:
    """Every speech clip whose text and speaker the game data give, by text number."""
    archive = open_archive(folder)
    names = compact_names((folder / "sky.cpt").read_bytes())
    who = speakers_of(archive, names)
    sections = {
        s: section_messages(archive.read(TEXT_FILE_BASE + s))
        for s in range(SPEECH_SECTIONS)
        if TEXT_FILE_BASE + s in archive.index
    }
    proper = proper_nouns([m for msgs in sections.values() for m in msgs])
    out = []
    for section, messages in sections.items():
        for n, raw in enumerate(messages):
            number = section << 12 | n
            speech = speech_file(number)
            if number not in who or speech not in archive.index:
                continue
            text = clean_line(raw, proper)
            if text:
                out.append(Clip(number, speech, who[number], text))
    return out


def decode_speech(data: bytes) -> np.ndarray:
    """Float32 samples of a speech file (unsigned 8-bit PCM after the header)."""
    if len(data) <= HEADER:
        raise FormatError("speech file holds no samples")
    pcm = np.frombuffer(data[HEADER:], dtype=np.uint8)
    return (pcm.astype(np.float32) - 128.0) / 128.0


def read_clip(folder: Path, speech: int) -> tuple[np.ndarray, int]:
    return decode_speech(open_archive(folder).read(speech)), CLIP_RATE
