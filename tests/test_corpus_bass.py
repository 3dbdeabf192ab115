"""Beneath a Steel Sky reader: index, RNC unpacking, Huffman text and script scanning on
small data built here (the 66 MB game package is not needed)."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest

from dictation.lab.corpus import bass, bass_format
from dictation.lab.corpus.bass_format import FormatError, crc16, encode_message, rnc_unpack, section_messages
from dictation.lab.corpus.common import EngineUnavailable


class _Writer:
    """RNC method-1 bit writer: LSB-first LE words, literal runs placed after the word
    being filled (the reader finishes that word after the run)."""

    def __init__(self) -> None:
        self.slots: list[list] = []  # [bits list] for words, [bytes] for literal runs
        self.cur: list[int] | None = None

    def bits(self, value: int, count: int) -> None:
        for i in range(count):
            if self.cur is None or len(self.cur) == 16:
                self.cur = []
                self.slots.append(self.cur)
            self.cur.append(value >> i & 1)

    def code(self, code: int, length: int) -> None:  # Huffman codes go MSB first
        for i in range(length - 1, -1, -1):
            self.bits(code >> i & 1, 1)

    def literal(self, data: bytes) -> None:
        if self.cur is not None and len(self.cur) == 16:
            self.cur = None
        self.slots.append([bytes(data)])

    def getvalue(self) -> bytes:
        out = bytearray()
        for slot in self.slots:
            if slot and isinstance(slot[0], bytes):
                out += slot[0]
            else:
                word = sum(b << i for i, b in enumerate(slot))
                out += struct.pack("<H", word)
        return bytes(out)


def _value(w: _Writer, v: int) -> None:
    """A value with the flat table (16 symbols, 4-bit codes: code == symbol)."""
    sym = v if v < 2 else v.bit_length()
    w.code(sym, 4)
    if sym >= 2:
        w.bits(v - (1 << (sym - 1)), sym - 1)


def _match(data: bytes, pos: int, end: int, want: int) -> tuple[int, int] | None:
    for length in range(min(want, end - pos), 1, -1):
        for off in range(1, pos + 1):  # may overlap the bytes it produces
            if all(data[pos - off + i] == data[pos + i] for i in range(length)):
                return off, length
    return None


def rnc_pack(data: bytes, seed: int = 0, blocks: int = 2) -> bytes:
    """A valid RNC method-1 block for `data`: random literal runs and back-references."""
    rng = random.Random(seed)
    w = _Writer()
    w.bits(0, 2)
    pos, per_block = 0, -(-len(data) // blocks)
    for b in range(blocks):
        end = min(len(data), (b + 1) * per_block)
        pairs: list[tuple[bytes, int, int]] = []
        start = pos
        while True:
            pos = min(end, pos + rng.randint(0 if pos else 1, 5))
            found = None
            while end - pos >= 2 and not (found := _match(data, pos, end, rng.randint(2, 12))):
                pos += 1
            if not found:
                break
            pairs.append((data[start:pos], *found))
            pos += found[1]
            start = pos
        pairs.append((data[start:end], 0, 0))  # the last pair of a block has no match
        pos = end
        for _ in range(3):  # flat tables: 16 symbols of 4 bits
            w.bits(16, 5)
            for _ in range(16):
                w.bits(4, 4)
        w.bits(len(pairs), 16)
        for i, (lit, off, length) in enumerate(pairs):
            _value(w, len(lit))
            if lit:
                w.literal(lit)
            if i < len(pairs) - 1:
                _value(w, off - 1)
                _value(w, length - 2)
    body = w.getvalue()
    head = b"RNC\x01" + struct.pack(">IIHHBB", len(data), len(body), crc16(data), crc16(body), 0, blocks)
    return head + body


def _packable(n: int, seed: int) -> bytes:
    """Text-like bytes with repeats (so the packer finds matches) and odd bytes."""
    rng = random.Random(seed)
    words = [b"steel ", b"sky ", b"linc ", b"foster ", b"joey "]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) if rng.random() < 0.7 else bytes([rng.randrange(256)])
    return bytes(out[:n])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rnc_round_trip(seed):
    data = _packable(600, seed)
    packed = rnc_pack(data, seed)
    assert len(packed) < len(data)  # matches were used, not only literals
    assert rnc_unpack(packed) == data


def test_rnc_rejects_corrupt_data():
    data = _packable(300, 1)
    packed = bytearray(rnc_pack(data, 1))
    packed[30] ^= 0x40
    with pytest.raises(FormatError):
        rnc_unpack(bytes(packed))
    with pytest.raises(FormatError):
        rnc_unpack(b"RNC\x02" + bytes(packed[4:]))


def _index(entries: list[tuple[int, int, int]]) -> bytes:
    out = struct.pack("<I", len(entries))
    for number, offset, flags in entries:
        out += struct.pack("<H", number) + offset.to_bytes(3, "little") + flags.to_bytes(3, "little")
    return out


def _header(total: int, packed: bool) -> bytes:
    return struct.pack(
        "<11H", (0x80 if packed else 0) | ((total >> 16) << 8), 0, 0, 0, 0, 0, total & 0xFFFF, 0, 0, 0, 0
    )


def test_archive_reads_stored_and_packed_files(tmp_path):
    data = _packable(500, 2)
    packed = _header(22 + len(data), True) + rnc_pack(data, 2)
    plain = b"plain bytes, never packed"
    dsk = bytearray(b"\0" * 32) + packed
    dsk += b"\0" * (-len(dsk) % 16)
    at16 = len(dsk)
    dsk += packed
    at_plain = len(dsk)
    dsk += plain
    (tmp_path / "sky.dsk").write_bytes(bytes(dsk))
    (tmp_path / "sky.dnr").write_bytes(
        _index(
            [
                (7, 32, len(packed)),  # packed, header kept
                (8, 0x800000 | at16 >> 4, 0x400000 | len(packed)),  # 16-byte units, header dropped
                (9, at_plain, 0x800000 | len(plain)),  # stored
            ]
        )
    )
    arch = bass_format.Archive(tmp_path / "sky.dnr", tmp_path / "sky.dsk")
    assert sorted(arch.index) == [7, 8, 9]
    assert arch.read(7) == packed[:22] + data
    assert arch.read(8) == data
    assert arch.read(9) == plain
    with pytest.raises(FormatError):
        bass_format.parse_index(struct.pack("<I", 5) + b"\0" * 8)


def _section(messages: list[bytes]) -> bytes:
    """A text section file coded with the game's character tree."""
    coded = []
    for m in messages:
        bits = encode_message(m)
        bits += "0" * (-len(bits) % 2)
        units = len(bits) // 2
        if units >= 128:  # long messages are skipped in steps of 8 units
            pad = -units % 8
            bits += "00" * pad
            units += pad
        coded.append((bits, units))
    blocks = [sum(u for _, u in coded[i : i + 32]) for i in range(0, len(coded), 32)]
    skips = bytes(u if u < 128 else 0x80 | u >> 3 for _, u in coded)
    stream = "".join(b for b, _ in coded)
    stream += "0" * (-len(stream) % 8)
    data = int(stream, 2).to_bytes(len(stream) // 8, "big") if stream else b""
    table = b"".join(struct.pack("<H", b) for b in blocks[:-1])
    skip_at = 4 + len(table)
    return struct.pack("<HH", skip_at, skip_at + len(skips)) + table + skips + data


def test_section_messages_round_trip_across_blocks():
    rng = random.Random(5)
    words = ["Foster", "LINC", "what's", "that?", "Joey,", "the", "SKY", "isn't", "here...", "(sigh)", "1993!"]
    msgs = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6))).encode() for _ in range(70)]
    msgs[40] = b" ".join([b"a long line"] * 30)  # > 127 units: the coarse skip
    assert section_messages(_section(msgs)) == msgs


def test_character_tree_is_a_prefix_code():
    codes = bass_format.CODES_0372
    assert len(codes) == 123 and codes["000"] == 0x20  # space: the shortest code
    assert (codes["0010"], codes["0011"], codes["0111"]) == (ord("e"), ord("a"), ord("r"))
    keys = sorted(codes)
    assert not any(b.startswith(a) for a, b in zip(keys, keys[1:]))
    assert bass_format._tree(0b1, 3, b"ab") == {"0": ord("a"), "1": ord("b")}
    with pytest.raises(FormatError):
        bass_format._tree(0b1, 2, b"ab")  # an inner node without its second child
    with pytest.raises(FormatError):
        bass_format._tree(0b0, 1, b"ab")  # more leaves than the shape has


def _words(*w: int) -> bytes:
    return struct.pack(f"<{len(w)}H", *w)


def test_speech_calls_keep_only_pinned_speakers():
    module = _words(
        2, 3, 2, 0x1234, 2, 9, 11, 3, 35 * 4,  # fnSpeakMe(constant 3, 0x1234)
        0, 48, 2, 0x2001, 2, 10, 11, 3, 36 * 4,  # fnSpeakMeDir(CUR_ID, 0x2001): the player
        0, 480, 2, 0x2002, 2, 9, 11, 3, 37 * 4,  # speaker in a variable: left out
        0, 48, 0, 80, 2, 9, 11, 3, 35 * 4,  # text in a variable: left out
        2, 5, 2, 0x3000, 2, 0, 11, 3, 21 * 4,  # not a speech function
    )  # fmt: skip
    assert bass.speech_calls(module) == [(35, 3, 0x1234), (36, -1, 0x2001)]


def _cpt(compacts: list[list[tuple[str, list[int]] | None]]) -> bytes:
    src, names, raw = b"", b"", 0
    for lst in compacts:
        for c in lst:
            if c is None:
                src += _words(0)
            else:
                src += _words(len(c[1]), 1, *c[1])
                names += c[0].encode() + b"\0"
                raw += len(c[1])
    head = _words(0, len(compacts), *(len(lst) for lst in compacts))
    return head + struct.pack("<II", raw, len(src) // 2) + src + struct.pack("<I", len(names)) + names


def test_compact_names_and_speakers(tmp_path):
    cpt = _cpt([[None, ("joey", [1, 2]), None, ("foster", [3])], [("sc31_guard", [0, 0, 0])]])
    names = bass.compact_names(cpt)
    assert names == {1: "joey", 3: "foster", 0x1000: "sc31_guard"}
    module = _words(
        2, 1, 2, 0x10, 2, 9, 11, 3, 35 * 4,  # joey says 0x10
        2, 0x1000, 2, 0x11, 2, 9, 11, 3, 37 * 4,  # the guard says 0x11
        0, 48, 2, 0x11, 2, 9, 11, 3, 36 * 4,  # ... and Foster too: ambiguous, dropped
        0, 48, 2, 0x12, 2, 9, 11, 3, 36 * 4,  # Foster says 0x12
    )  # fmt: skip
    (tmp_path / "sky.dsk").write_bytes(module)
    (tmp_path / "sky.dnr").write_bytes(_index([(60400, 0, 0x800000 | len(module))]))
    arch = bass.open_archive(tmp_path)
    assert bass.speakers_of(arch, names) == {0x10: "joey", 0x12: "foster"}


def test_speech_file_numbers():
    assert bass.speech_file(0x0005) == 50005
    assert bass.speech_file(0x2123) == 50000 + 1100 + 0x123


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"What are YOU doing HERE?", "What are you doing here?"),
        (b"It's a LINC terminal...", "It's a LINC terminal..."),
        (b"(sigh) Not again.", "Not again."),
        (b"ROUTINE INSPECTION", "Routine inspection"),
        (b"...which means I'M getting close!", "...which means I'm getting close!"),
        (b"\x8e\x8f\x92", ""),
        (b"?", ""),
        (b"Press #1 to continue", ""),
    ],
)
def test_clean_line(raw, text):
    assert bass.clean_line(raw) == text


def test_clean_line_restores_names_after_unshouting():
    proper = bass.proper_nouns([b"Ask for Howard Hobbins, please.", b"What a DAY."])
    assert proper == {"Howard", "Hobbins"}
    assert bass.clean_line(b"Versus HOWARD HOBBINS.", proper) == "Versus Howard Hobbins."


def test_decode_speech_is_unsigned_8_bit():
    pcm = bytes([128, 255, 0, 128])
    audio = bass.decode_speech(_header(22 + len(pcm), False) + pcm)
    assert audio.dtype == np.float32
    np.testing.assert_allclose(audio, [0.0, 127 / 128, -1.0, 0.0])
    with pytest.raises(FormatError):
        bass.decode_speech(b"\0" * 22)


def test_source_skipped_with_install_hint(monkeypatch, tmp_path):
    from dictation.lab.corpus.sources import SOURCES

    monkeypatch.setattr(bass, "data_candidates", lambda: [tmp_path])
    with pytest.raises(EngineUnavailable, match="apt-get download beneath-a-steel-sky"):
        SOURCES["bass"]().check()


def test_source_lists_characters_and_renders(monkeypatch, tmp_path):
    from dictation.lab.corpus.sources import SOURCES

    clips = [
        bass.Clip(0x10, 50016, "joey", "Hello there."),
        bass.Clip(0x12, 50018, "foster", "Hi."),
        bass.Clip(0x13, 50019, "foster", "Bye."),
    ]
    monkeypatch.setattr(bass, "find_data", lambda: Path(tmp_path))
    monkeypatch.setattr(bass, "clips", lambda folder: clips)
    monkeypatch.setattr(bass, "read_clip", lambda folder, n: (np.full(n - 50000, 0.5, np.float32), 11025))
    src = SOURCES["bass"]()
    speakers = src.speakers(0)
    assert [s.id for s in speakers] == ["bass-foster", "bass-joey"]
    items = src.items(speakers[0], None, 0)
    assert [(i.key, i.text) for i in items] == [("0-0018", "Hi."), ("0-0019", "Bye.")]
    assert len(src.items(speakers[0], 1, 0)) == 1
    audio, sr = src.render(speakers[0], items[0])
    assert sr == 11025 and audio.shape == (18,)
