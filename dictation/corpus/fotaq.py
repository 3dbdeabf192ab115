"""Flight of the Amazon Queen speech clips mapped to their transcripts and characters.

The game's data (Debian `flight-of-the-amazon-queen`, freeware) is one archive,
`queen.1c`: a 13-byte id, a big-endian u16 entry count at offset 13, then 21-byte
entries (12-byte name, 1 byte, u32 offset, u32 size). Speech clips are `.SB` entries
(MP3, 11.025 kHz). Dialogue lives in `.DOG` files, one or more per character
(`BOB1.DOG` ... for Bob). A `.DOG` starts with a 20-byte "AmBk" bank header; after it
(offsets below are relative to that point): i16 levels (negative = cannot quit),
i16 unique key, i16 talk key, i16 number of Joe sentences, i16 number of the other
person's sentences, six i16 game-state fields, u16 offsets of the person, cutaway and
second-person blocks, then `levels` x 6 dialogue-tree nodes of 16 bytes. Joe's block
follows the tree (at 32 + levels * 96); it and the person block are lists of
(u32 sentence id, Pascal string padded to 4 bytes). A sentence is split into spoken
segments by `*NN` animation codes (two digits or letters).

A clip name is `KKIIIIWS`: talk key (2 decimal digits), sentence id (4 hex digits),
who speaks (`J` Joe, `P` the other person) and segment number (1-based, hex). Joe's
opening line is sentence 0 and is named `KKSSSSJ1`.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from dictation.corpus.common import EngineUnavailable, cache_root
from dictation.text import clean_transcript

LICENCE = "Flight of the Amazon Queen: freeware, free redistribution"
INSTALL_HINT = (
    "Flight of the Amazon Queen data not found: `apt-get install flight-of-the-amazon-queen` "
    "(or `apt-get download flight-of-the-amazon-queen && dpkg -x flight-of-the-amazon-queen_*.deb DIR` "
    "and set DICTATION_FOTAQ=DIR/usr/share/scummvm/flight-of-the-amazon-queen/queen.1c)"
)
_HEADER = 20  # "AmBk" bank header in front of every .DOG
# Characters whose lines are not language (the dog barks); dropped.
NOT_SPEECH = {"Dog"}
# Characters who mostly speak invented language: kept for training, never held out.
INVENTED_LANGUAGE = {"Ape"}
_CLIP = re.compile(r"^(\d\d)([0-9A-F]{4}|SSSS)([JP])([0-9A-F])\.SB$")
_CODE = re.compile(r"\*[0-9A-Za-z]{2}")


def archive_candidates() -> list[Path]:
    env = os.environ.get("DICTATION_FOTAQ")
    paths = [Path(env)] if env else []
    paths += [
        Path("/usr/share/scummvm/flight-of-the-amazon-queen/queen.1c"),
        Path("/usr/share/games/flight-of-the-amazon-queen/queen.1c"),
        cache_root() / "sources" / "fotaq" / "queen.1c",
    ]
    return paths


def find_archive() -> Path:
    """Path of `queen.1c`, or EngineUnavailable saying how to get it."""
    for p in archive_candidates():
        if p.is_file():
            return p
    raise EngineUnavailable(INSTALL_HINT)


@dataclass(frozen=True)
class Entry:
    name: str
    offset: int
    size: int


def read_index(archive: Path) -> dict[str, Entry]:
    with open(archive, "rb") as f:
        head = f.read(15)
        if len(head) < 15 or not head.startswith(b"QTBL"):
            raise EngineUnavailable(f"{archive} is not a Flight of the Amazon Queen archive")
        (count,) = struct.unpack(">H", head[13:15])
        table = f.read(21 * count)
    entries = {}
    for i in range(count):
        raw = table[21 * i : 21 * i + 21]
        name = raw[:12].split(b"\0", 1)[0].decode("latin-1")
        offset, size = struct.unpack(">II", raw[13:21])
        entries[name] = Entry(name, offset, size)
    return entries


def read_entry(archive: Path, entry: Entry) -> bytes:
    with open(archive, "rb") as f:
        f.seek(entry.offset)
        return f.read(entry.size)


@dataclass
class Dialogue:
    talk_key: int
    joe: dict[int, str]
    person: dict[int, str]


def _sentences(data: bytes, pos: int, count: int) -> dict[int, str]:
    out: dict[int, str] = {}
    for _ in range(count):
        if pos + 5 > len(data):
            break
        (sid,) = struct.unpack(">I", data[pos : pos + 4])
        length = data[pos + 4]
        text = data[pos + 5 : pos + 5 + length].decode("latin-1")
        pos += 5 + length
        pos += -pos % 4
        out.setdefault(sid, text)
    return out


def parse_dog(raw: bytes) -> Dialogue:
    """Joe's and the other person's sentences of one `.DOG`, keyed by sentence id."""
    data = raw[_HEADER:]
    levels, _unique, talk_key, j_max, p_max = struct.unpack(">5h", data[:10])
    person_off = struct.unpack(">H", data[22:24])[0]
    joe_off = 32 + abs(levels) * 96
    return Dialogue(talk_key, _sentences(data, joe_off, j_max), _sentences(data, person_off, p_max))


def segments(sentence: str) -> list[str]:
    """Spoken segments of a sentence (split on `*NN` animation codes), empty ones dropped."""
    return [s.strip() for s in _CODE.split(sentence) if s.strip()]


def character_name(dog_name: str) -> str:
    return re.sub(r"\d+$", "", dog_name.rsplit(".", 1)[0]).capitalize()


@dataclass(frozen=True)
class Clip:
    name: str
    character: str
    text: str
    offset: int
    size: int


def clips(archive: Path) -> list[Clip]:
    """Every speech clip whose transcript the dialogue files give, sorted by name."""
    index = read_index(archive)
    by_key: dict[int, tuple[str, Dialogue]] = {}
    for name in sorted(index):
        if name.endswith(".DOG"):
            dlg = parse_dog(read_entry(archive, index[name]))
            by_key.setdefault(dlg.talk_key, (character_name(name), dlg))
    out = []
    for name in sorted(index):
        m = _CLIP.match(name)
        if not m or int(m.group(1)) not in by_key:
            continue
        character, dlg = by_key[int(m.group(1))]
        sid = 0 if m.group(2) == "SSSS" else int(m.group(2), 16)
        if m.group(2) == "SSSS" and m.group(3) != "J":
            continue
        table = dlg.joe if m.group(3) == "J" else dlg.person
        if sid not in table:
            continue
        segs = segments(table[sid])
        seg = int(m.group(4), 16) - 1
        if seg >= len(segs):
            continue
        text = clean_transcript(segs[seg])
        if len(re.findall(r"[A-Za-z]", text)) < 2 or character in NOT_SPEECH:
            continue
        e = index[name]
        out.append(Clip(name, "Joe" if m.group(3) == "J" else character, text, e.offset, e.size))
    return out
