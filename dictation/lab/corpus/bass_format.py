"""Beneath a Steel Sky data files: the file index, RNC-packed files and Huffman-coded text.

Re-implemented from the format as the game stores it (ScummVM's `engines/sky` was read
for the layout only; no code is taken from it).

`sky.dnr` is the index: u32 LE count, then 8-byte entries: u16 file number, u24 offset
into `sky.dsk` (bit 23 set: the offset is in 16-byte units), u24 flags (bits 0-21 the
stored size, bit 22 "header not kept", bit 23 "stored, never packed"). A file that may be
packed starts with a 22-byte header of 11 LE u16 fields; field 0 bit 7 says it is RNC
packed, and the unpacked size is `(field0 & 0xFF00) << 8 | field6`. The RNC block follows
the header, which is kept in front of the unpacked data unless flag bit 22 is set.

RNC method 1: "RNC\\x01", BE u32 unpacked and packed sizes, BE u16 CRCs of the unpacked
and packed data (CRC-16/ARC), a leeway byte and a block count. The packed data is a
little-endian 16-bit word bit stream read LSB first, into which literal byte runs are
spliced: a literal run starts at the word the reader has most recently fetched, and the
reader resumes with the word after the run (bits already fetched from earlier words
stay). The stream opens with 2 flag bits; each block has three Huffman tables (literal
run lengths, match offsets, match lengths: 5-bit symbol count, 4-bit code lengths,
canonical codes sent bit-reversed), a 16-bit count of (literal run, match) pairs, the
last pair without a match. Symbol s >= 2 is the value 2^(s-1) + (s-1) further bits.

Text: file 60600 + 8 * language + section (English = 0) holds messages of that section
(text number `section << 12 | n`). u16 at 0: offset of a one-byte-per-message skip table
(indexed by n & 0xFE0 + i); u16 at 2: offset of the Huffman bit data; u16 at 4 on: the
length of each 32-message block. Lengths count 2-bit units; a skip byte with bit 7 set
counts 8 units per step. Characters are a prefix code read MSB first; message ends at 0.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

HEADER = 22
RNC_MAGIC = b"RNC\x01"
TEXT_FILE_BASE = 60600

# The v0.0372 character code as a full binary tree in pre-order (the game program holds
# it, not its data files): bit i of _TREE_SHAPE is 1 for an inner node, 0 for a leaf,
# and _TREE_LEAVES lists the leaves in the same order. A 0 bit goes left.
_TREE_SHAPE = 0x531C8F263C993C8E4F238C7C6391F18E4F2391F2391F19391F19391F19397
_TREE_LEAVES = (
    b" eaostn.ir\x00EumAlIdRNSTOhcDgLCpU!yMPvH?b'f,GBVkFqwK-WJ*zYj+Q\x85)Z\x8b<\x95~\x8a\x87:\x7f]#xX"
    b'\x91\x88`20\x831/(=\x86^39\x984}8\\"\x90&\x8d56\x92\x8f\x8e\x93\x8c7\x80\x81\x99$@[\x9a_>\x96\x82%\t'
    b"\x9c\x97{\x94!"
)
_TREE_NODES = 245


class FormatError(ValueError):
    """Data that does not follow the layout above."""


@dataclass(frozen=True)
class Entry:
    number: int
    offset: int
    size: int
    flags: int


def parse_index(dnr: bytes) -> dict[int, Entry]:
    if len(dnr) < 4:
        raise FormatError("index too short")
    (count,) = struct.unpack("<I", dnr[:4])
    if len(dnr) < 4 + 8 * count:
        raise FormatError(f"index says {count} entries but holds {(len(dnr) - 4) // 8}")
    out = {}
    for i in range(count):
        raw = dnr[4 + 8 * i : 12 + 8 * i]
        number = raw[0] | raw[1] << 8
        offset = int.from_bytes(raw[2:5], "little")
        flags = int.from_bytes(raw[5:8], "little")
        if offset & 0x800000:
            offset = (offset & 0x7FFFFF) << 4
        out[number] = Entry(number, offset, flags & 0x3FFFFF, flags)
    return out


def unpack_file(stored: bytes, entry: Entry) -> bytes:
    """A file's contents as the game uses them (header kept unless the index says not)."""
    if entry.flags & 0x800000 or len(stored) < HEADER or not stored[0] & 0x80:
        return stored
    body = stored[HEADER:]
    if not body.startswith(RNC_MAGIC):
        return stored
    data = rnc_unpack(body)
    return data if entry.flags & 0x400000 else stored[:HEADER] + data


class Archive:
    """`sky.dnr` + `sky.dsk`: read any file by number."""

    def __init__(self, dnr: Path, dsk: Path):
        self.dsk = dsk
        self.index = parse_index(dnr.read_bytes())

    def stored(self, number: int) -> bytes:
        e = self.index[number]
        with open(self.dsk, "rb") as f:
            f.seek(e.offset)
            return f.read(e.size)

    def read(self, number: int) -> bytes:
        return unpack_file(self.stored(number), self.index[number])


def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


class _Bits:
    """LSB-first reader over LE 16-bit words with spliced-in literal runs."""

    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos
        self.buf, self.n = self._word(pos), 16

    def _word(self, pos: int) -> int:
        w = self.data[pos : pos + 2]
        return w[0] | (w[1] << 8) if len(w) == 2 else (w[0] if w else 0)

    def peek(self) -> int:
        return self.buf & 0xFFFF

    def read(self, k: int) -> int:
        v = self.buf & ((1 << k) - 1)
        self.buf >>= k
        self.n -= k
        if self.n < 16:
            self.pos += 2
            self.buf |= self._word(self.pos) << self.n
            self.n += 16
        return v

    def literal(self, length: int) -> bytes:
        out = self.data[self.pos : self.pos + length]
        if len(out) != length:
            raise FormatError("literal run past the end of the packed data")
        self.n -= 16
        self.buf &= (1 << self.n) - 1
        self.pos += length
        self.buf |= self._word(self.pos) << self.n
        self.n += 16
        return out


def _table(bits: _Bits, old: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """(bit length, reversed code, symbol) entries; an empty table keeps the previous one."""
    count = bits.read(5)
    if not count:
        return old
    lengths = [bits.read(4) for _ in range(count)]
    out, code = [], 0
    for length in range(1, 17):
        for sym, ln in enumerate(lengths):
            if ln == length:
                prefix = code >> (16 - length)
                out.append((length, int(f"{prefix:0{length}b}"[::-1], 2), sym))
                code += 1 << (16 - length)
    return out


def _value(bits: _Bits, table: list[tuple[int, int, int]]) -> int:
    word = bits.peek()
    for length, code, sym in table:
        if word & ((1 << length) - 1) == code:
            bits.read(length)
            return sym if sym < 2 else (1 << (sym - 1)) | bits.read(sym - 1)
    raise FormatError("bit pattern matches no Huffman code")


def rnc_unpack(packed: bytes) -> bytes:
    """Unpack an RNC method-1 block; FormatError on a bad header, stream or CRC."""
    if len(packed) < 18 or not packed.startswith(RNC_MAGIC):
        raise FormatError("not an RNC method 1 block")
    unpacked_len, packed_len, crc_out, crc_in = struct.unpack(">IIHH", packed[4:16])
    blocks = packed[17]
    data = packed[18 : 18 + packed_len]
    if len(data) != packed_len or crc16(data) != crc_in:
        raise FormatError("packed data truncated or its CRC does not match")
    bits = _Bits(data + b"\0\0\0\0", 0)
    bits.read(2)
    out = bytearray()
    raw: list[tuple[int, int, int]] = []
    dist: list[tuple[int, int, int]] = []
    run: list[tuple[int, int, int]] = []
    for _ in range(blocks):
        raw, dist, run = _table(bits, raw), _table(bits, dist), _table(bits, run)
        pairs = bits.read(16)
        for i in range(pairs):
            length = _value(bits, raw)
            if length:
                out += bits.literal(length)
            if i < pairs - 1:
                offset = _value(bits, dist) + 1
                length = _value(bits, run) + 2
                if offset > len(out):
                    raise FormatError("match reaches before the start of the output")
                for _ in range(length):  # may overlap itself
                    out.append(out[-offset])
        if len(out) > unpacked_len:
            raise FormatError("unpacked data longer than the header says")
    if len(out) != unpacked_len or crc16(bytes(out)) != crc_out:
        raise FormatError("unpacked size or CRC does not match")
    return bytes(out)


def _tree(shape: int, nodes: int, leaves: bytes) -> dict[str, int]:
    """Code (as a '0'/'1' string) -> character, from the pre-order tree."""
    codes: dict[str, int] = {}
    it = iter(leaves)
    stack = [""]
    for i in range(nodes):
        prefix = stack.pop()
        if shape >> i & 1:
            stack += [prefix + "1", prefix + "0"]  # left ("0") subtree comes next
        else:
            codes[prefix] = next(it)
    if stack or next(it, None) is not None:
        raise FormatError("character tree is not a full binary tree")
    return codes


CODES_0372 = _tree(_TREE_SHAPE, _TREE_NODES, _TREE_LEAVES)


def decode_message(data: bytes, bit: int, codes: dict[str, int] = CODES_0372) -> bytes:
    """Characters from bit offset `bit` (MSB first) up to the terminating 0."""
    out = bytearray()
    code = ""
    limit = len(data) * 8
    longest = max(map(len, codes))
    while bit < limit:
        code += "1" if data[bit >> 3] >> (7 - (bit & 7)) & 1 else "0"
        bit += 1
        if code in codes:
            if codes[code] == 0:
                return bytes(out)
            out.append(codes[code])
            code = ""
        elif len(code) > longest:
            raise FormatError("bit pattern matches no character")
    raise FormatError("message runs past the end of the text file")


def section_messages(data: bytes, codes: dict[str, int] = CODES_0372) -> list[bytes]:
    """Every message of one text section, in order (index = text number & 0xFFF)."""
    skip_at, bits_at = struct.unpack("<HH", data[:4])
    blocks = [struct.unpack("<H", data[p : p + 2])[0] for p in range(4, skip_at, 2)]
    out = []
    block_start = 0
    for n in range(bits_at - skip_at):
        if n and n % 32 == 0:
            if n // 32 > len(blocks):
                break
            block_start += blocks[n // 32 - 1]
        units = block_start
        for i in range(n & ~31, n):
            skip = data[skip_at + i]
            units += (skip & 0x7F) << 3 if skip & 0x80 else skip
        pos = bits_at * 8 + (units >> 2) * 8 + (units & 3) * 2
        try:
            out.append(decode_message(data, pos, codes))
        except FormatError:
            break
    return out


def encode_message(text: bytes, codes: dict[str, int] = CODES_0372) -> str:
    """The bit string of a message (with its terminating 0); for tests and checks."""
    inverse: dict[int, str] = {}
    for code, ch in codes.items():
        inverse.setdefault(ch, code)
    return "".join(inverse[c] for c in text + b"\0")
