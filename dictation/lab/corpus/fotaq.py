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
opening line is sentence 0 and is named `KKSSSSJ1`. Segments are numbered by position,
so a sentence that opens with a code (`*FLHey!`) has its first words in segment 2.

Cutscenes (`.CUT`, same 20-byte header) hold objects that speak: u16 panel, i16 object
count, i16 flags, u16 offsets of the game-state block, the sentences and the bank
names; then per object 17 i16 fields (object number first, 0 = Joe; animation list
fifth), a person list (i16 count + items) and, if the animation list is non-zero,
10-word animation entries up to a -2. Sentences are byte-length strings, padded to an
even offset when non-empty; sentence k belongs to object k (1-based; sentence 0 is not
spoken). The bank-name block ends with the conversation's `.DOG` name and the object
number of the person talked to. Clip names: the cutscene name padded with `_` to 5
characters, the object number (2 digits) and the segment. Who a person object is comes
from the game's object table (`QUEEN.JAS`: counts, then 16-byte objects whose first
field is a name index) and its text list (`QUEEN2.JAS`, CRLF lines: object
descriptions, object names, room names, 12 verbs, 40 Joe responses ...).
Joe's look-at lines are clips `JOEnnnnS`: n <= 40 a Joe response, else object
description n - 40.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from dictation.app.text import clean_transcript
from dictation.lab.corpus.common import EngineUnavailable, cache_root

LICENCE = "Flight of the Amazon Queen: freeware, free redistribution"
INSTALL_HINT = (
    "Flight of the Amazon Queen data not found: `apt-get install flight-of-the-amazon-queen` "
    "(or `apt-get download flight-of-the-amazon-queen && dpkg -x flight-of-the-amazon-queen_*.deb DIR` "
    "and set DICTATION_FOTAQ=DIR/usr/share/scummvm/flight-of-the-amazon-queen/queen.1c)"
)
_HEADER = 20  # "AmBk" bank header in front of every .DOG, .CUT and .JAS
# Characters whose lines are not language (the dog barks); dropped.
NOT_SPEECH = {"Dog"}
# Characters who mostly speak invented language: kept for training, never held out.
INVENTED_LANGUAGE = {"Ape"}
# Characters that seem to share a voice actor: with resemblyzer speaker embeddings, >= 5
# of 30 clips of one lay nearer the other's centroid than their own (measured on the
# built corpus; other pairs <= 3). Splits keep each group together, so a held-out voice
# is not trained on under another name.
SHARED_VOICE = (("Lou", "Sparky"), ("Ape", "Man"), ("Chef", "Frank"), ("Lola", "Prin"), ("And", "Henry"))
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
    """Segments of a sentence split on `*NN` animation codes, by position (may be empty)."""
    parts = [p.strip() for p in _CODE.split(sentence)]
    while parts and not parts[-1]:
        parts.pop()
    return parts


def character_name(dog_name: str) -> str:
    return re.sub(r"\d+$", "", dog_name.rsplit(".", 1)[0]).capitalize()


@dataclass(frozen=True)
class Clip:
    name: str
    character: str
    text: str
    offset: int
    size: int


@dataclass
class Cutscene:
    objects: list[tuple[int, int]]  # (object number, animation list) per object
    sentences: list[str]  # sentences[k] belongs to object k (1-based)
    talk_file: str
    talk_to: int


def parse_cutscene(raw: bytes) -> Cutscene:
    """A `.CUT`'s speaking objects and sentences; ValueError if the layout does not add up."""
    data = raw[_HEADER:]
    try:
        _panel, count, _flags, state_off, sentence_off, bank_off = struct.unpack(">HhhHHH", data[:12])
        pos, objects = 12, []
        for _ in range(abs(count)):
            rec = struct.unpack(">17h", data[pos : pos + 34])
            pos += 34
            (people,) = struct.unpack(">h", data[pos : pos + 2])
            pos += 2 + 2 * people
            if rec[4]:  # animation entries: a header word and 9 fields, up to a -2
                while struct.unpack(">h", data[pos : pos + 2])[0] != -2:
                    pos += 20
                pos += 2
            objects.append((rec[0], rec[4]))
        if pos != state_off - 2:
            raise ValueError("object block does not end where the game state starts")
        sentences, pos = _strings(data, sentence_off, abs(count) + 1)
        (banks,) = struct.unpack(">H", data[bank_off : bank_off + 2])
        names, pos = _strings(data, bank_off + 2, banks + 1)
        (talk_to,) = struct.unpack(">h", data[pos : pos + 2])
    except (struct.error, IndexError) as exc:
        raise ValueError(f"truncated cutscene: {exc}") from exc
    return Cutscene(objects, sentences, names[-1], talk_to)


def _strings(data: bytes, pos: int, count: int) -> tuple[list[str], int]:
    out = []
    for _ in range(count):
        length = data[pos]
        out.append(data[pos + 1 : pos + 1 + length].decode("latin-1"))
        pos += 1 + length
        if length and pos % 2:
            pos += 1
    return out, pos


@dataclass
class GameText:
    lines: list[str]
    object_names: dict[int, tuple[str, int]]  # object number -> (name, image) of people
    descriptions: int
    joe_responses: int  # index of the first Joe response in `lines`


def read_game_text(archive: Path, index: dict[str, Entry]) -> GameText:
    jas = read_entry(archive, index["QUEEN.JAS"])[_HEADER:]
    lines = read_entry(archive, index["QUEEN2.JAS"]).decode("latin-1").split("\r\n")
    rooms, names, objects, descriptions = struct.unpack(">4H", jas[:8])
    people = {}
    for i in range(1, objects + 1):
        name, _x, _y, _desc, _entry, _room, _state, image = struct.unpack(
            ">hHHHhHhh", jas[8 + 16 * (i - 1) : 24 + 16 * (i - 1)]
        )
        if name and image in (-3, -4):  # -3/-4: a person's (or a talking thing's) image
            people[i] = (lines[descriptions + abs(name) - 1], image)
    return GameText(lines, people, descriptions, descriptions + names + rooms + 12)


def _speaker_for_object(number: int, talk_map: dict[int, str], text: GameText, characters: set[str]) -> str | None:
    """The character an object number is: its `.DOG` character when known, else from its name."""
    if number in talk_map:
        return talk_map[number]
    name, _image = text.object_names.get(number, ("", 0))
    words = re.findall(r"[a-z]+", name.lower())
    if not words:
        return None
    if words == ["joe", "king"]:
        return "Joe"
    for ch in sorted(characters, key=len, reverse=True):
        if any(w.startswith(ch.lower()) for w in words):
            return ch
    # Other names are not trusted: some cutscenes make props "speak" (a note, a door)
    # with someone else's voice, so unmatched objects are left out.
    return None


def clips(archive: Path) -> list[Clip]:
    """Every speech clip whose transcript and speaker the game data give, sorted by name."""
    index = read_index(archive)
    by_key: dict[int, tuple[str, Dialogue]] = {}
    for name in sorted(index):
        if name.endswith(".DOG"):
            dlg = parse_dog(read_entry(archive, index[name]))
            by_key.setdefault(dlg.talk_key, (character_name(name), dlg))
    texts: dict[str, tuple[str, str]] = {}  # clip name -> (character, text)
    for name in sorted(index):
        m = _CLIP.match(name)
        if not m or int(m.group(1)) not in by_key or (m.group(2) == "SSSS" and m.group(3) != "J"):
            continue
        character, dlg = by_key[int(m.group(1))]
        sid = 0 if m.group(2) == "SSSS" else int(m.group(2), 16)
        table = dlg.joe if m.group(3) == "J" else dlg.person
        if sid in table:
            _add(texts, name, "Joe" if m.group(3) == "J" else character, table[sid], int(m.group(4), 16))
    if "QUEEN.JAS" in index and "QUEEN2.JAS" in index:
        _cutscene_and_joe_clips(archive, index, texts, {c for c, _ in by_key.values()})
    out = []
    for name in sorted(texts):
        character, text = texts[name]
        if character in NOT_SPEECH:
            continue
        e = index[name]
        out.append(Clip(name, character, text, e.offset, e.size))
    return out


def _add(texts: dict[str, tuple[str, str]], clip: str, character: str, sentence: str, segment: int) -> None:
    segs = segments(sentence)
    if 1 <= segment <= len(segs):
        # Stage directions such as "(sigh)" are not spoken words.
        text = clean_transcript(re.sub(r"\([^)]*\)", " ", segs[segment - 1]))
        if len(re.findall(r"[A-Za-z]", text)) >= 2:
            texts.setdefault(clip, (character, text))


def _cutscene_and_joe_clips(archive: Path, index: dict[str, Entry], texts: dict, characters: set[str]) -> None:
    game = read_game_text(archive, index)
    cuts = {}
    for name in sorted(index):
        if name.endswith(".CUT"):
            try:
                cuts[name[:-4]] = parse_cutscene(read_entry(archive, index[name]))
            except ValueError:
                continue  # a layout this parser does not know: its clips stay unmapped
    talk_map: dict[int, str] = {}
    for cut in cuts.values():
        if cut.talk_file.lower().endswith(".dog") and cut.talk_to > 0:
            talk_map.setdefault(cut.talk_to, character_name(cut.talk_file.upper()))
    for base, cut in cuts.items():
        for k, (number, anim) in enumerate(cut.objects, 1):
            sentence = cut.sentences[k] if k < len(cut.sentences) else ""
            if not sentence or sentence.startswith("#") or anim:  # "#": starts a dialogue
                continue
            who = (
                "Joe"
                if number == 0
                else _speaker_for_object(number, talk_map, game, characters)
                if number > 0
                else None
            )
            if who is None:
                continue
            for seg in range(1, len(segments(sentence)) + 1):
                clip = f"{base.ljust(5, '_')}{k:02d}{seg:X}.SB"
                if clip in index:
                    _add(texts, clip, who, sentence, seg)
    for name in index:
        m = re.match(r"^JOE(\d{4})(\d)\.SB$", name)
        if not m:
            continue
        n = int(m.group(1))
        line = game.joe_responses + n - 1 if n <= 40 else n - 40 - 1
        if 0 <= line < len(game.lines):
            _add(texts, name, "Joe", game.lines[line], int(m.group(2)))
