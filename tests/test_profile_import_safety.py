"""Profile import trusts nothing in the archive (issue 25): zip bombs, lying sizes,
encrypted entries, models that do not load, WAVs that do not decode. Real zip files."""

from __future__ import annotations

import json
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from dictation.app.profiles import CorruptProfileError, Profile, ProfileError, list_profiles

PROFILE_JSON = json.dumps({"format_version": 1, "name": "mallory", "created": "2026-01-01"}).encode()


def raw_zip(path: Path, entries: list[dict]) -> None:
    """Write a zip by hand, so headers can say what a normal writer never would.

    Each entry: name, data (already compressed), crc, size (declared), method
    (0 stored, 8 deflated, ...), flags.
    """
    body, central = bytearray(), bytearray()
    for e in entries:
        name = e["name"].encode()
        fields = (e.get("flags", 0), e.get("method", 8), 0, 0, e["crc"], len(e["data"]), e["size"], len(name), 0)
        central += struct.pack("<IHH", 0x02014B50, 20, 20) + struct.pack("<HHHHIIIHH", *fields)
        central += struct.pack("<HHHII", 0, 0, 0, 0, len(body)) + name
        body += struct.pack("<IH", 0x04034B50, 20) + struct.pack("<HHHHIIIHH", *fields) + name + e["data"]
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(body), 0)
    path.write_bytes(bytes(body + central + end))


def stored(name: str, data: bytes) -> dict:
    return {"name": name, "data": data, "crc": zlib.crc32(data), "size": len(data), "method": 0}


def deflated_zeros(chunk: int) -> tuple[bytes, int]:
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = deflate.compress(bytes(chunk)) + deflate.flush()
    return data, zlib.crc32(bytes(chunk))


def assert_nothing_imported(dictation_home: Path) -> None:
    assert list_profiles() == []
    root = dictation_home / "profiles"
    assert not root.exists() or list(root.iterdir()) == []


def tiny_onnx(op_type: str = "Identity") -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node(op_type, ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def test_zip_bomb_is_refused_before_anything_is_unpacked(dictation_home, tmp_path):
    """A 3.6 MB zip of 3.5 GiB of zeros (224 entries of 16 MiB), as in the issue."""
    chunk = 16 * 1024**2
    data, crc = deflated_zeros(chunk)
    bomb = tmp_path / "bomb.zip"
    entries = [stored("profile.json", PROFILE_JSON)]
    entries += [{"name": f"takes/{i:03d}.wav", "data": data, "crc": crc, "size": chunk} for i in range(224)]
    raw_zip(bomb, entries)
    assert 3_000_000 < bomb.stat().st_size < 4_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ProfileError, match="times its size"):
            Profile.import_archive(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024**2  # the archive's directory, not its contents
    assert_nothing_imported(dictation_home)


def test_entry_whose_contents_exceed_its_declared_size_is_refused(dictation_home, tmp_path):
    """Headers that lie small (the classic bypass of a size check): the contents are
    streamed and checked against the declared size and checksum, never trusted."""
    data, crc = deflated_zeros(16 * 1024**2)
    liar = tmp_path / "liar.zip"
    raw_zip(
        liar, [stored("profile.json", PROFILE_JSON), {"name": "history.jsonl", "data": data, "crc": crc, "size": 100}]
    )
    tracemalloc.start()
    try:
        with pytest.raises(ProfileError, match="sizes do not match|declares 100 bytes"):
            Profile.import_archive(liar)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024**2
    assert_nothing_imported(dictation_home)


def test_encrypted_duplicate_and_unknown_compression_entries_are_refused(dictation_home, tmp_path):
    cases = {
        "encrypted": [stored("profile.json", PROFILE_JSON), {**stored("history.jsonl", b"x"), "flags": 0x1}],
        "twice": [stored("profile.json", PROFILE_JSON), stored("history.jsonl", b"a"), stored("history.jsonl", b"b")],
        "unknown compression": [stored("profile.json", PROFILE_JSON), {**stored("history.jsonl", b"x"), "method": 99}],
    }
    for message, entries in cases.items():
        archive = tmp_path / f"{message}.zip"
        raw_zip(archive, entries)
        with pytest.raises(ProfileError, match=message):
            Profile.import_archive(archive)
    assert_nothing_imported(dictation_home)


def archive_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    path = tmp_path / "profile.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("profile.json", PROFILE_JSON)
        for name, data in files.items():
            z.writestr(name, data)
    return path


def take_files(take_id: str, wav: bytes) -> dict[str, bytes]:
    record = {"id": take_id, "prompt_id": "p", "text": "hello", "quality": {}, "created": ""}
    return {f"takes/{take_id}.json": json.dumps(record).encode(), f"takes/{take_id}.wav": wav}


def good_wav() -> bytes:
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros(1600, np.float32) + 0.1, 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_models_that_do_not_load_are_refused(dictation_home, tmp_path):
    metadata = {"model/metadata.json": b'{"version": 1}'}
    for model, message in [
        (b"v1", "not an ONNX model"),
        (tiny_onnx()[:-5], "truncated"),
        (tiny_onnx("NoSuchOperator"), "onnxruntime cannot load"),
    ]:
        archive = archive_with(tmp_path, {**metadata, "model/encoder.onnx": model})
        with pytest.raises(CorruptProfileError, match=message) as info:
            Profile.import_archive(archive)
        assert "nothing was imported" in str(info.value) and "model/encoder.onnx" in str(info.value)
        assert_nothing_imported(dictation_home)
    good = archive_with(tmp_path, {**metadata, "model/encoder.onnx": tiny_onnx(), **take_files("t1", good_wav())})
    profile = Profile.import_archive(good)
    assert (profile.model_dir() / "encoder.onnx").read_bytes() == tiny_onnx()
    assert len(profile.takes()) == 1


def test_wavs_that_do_not_decode_are_refused(dictation_home, tmp_path):
    for wav in (b"RIFF" + bytes(range(200)), good_wav()[:30]):
        archive = archive_with(tmp_path, take_files("t1", wav))
        with pytest.raises(CorruptProfileError, match="takes/t1.wav"):
            Profile.import_archive(archive)
        assert_nothing_imported(dictation_home)


def test_export_leaves_out_what_import_would_refuse(dictation_home, tmp_path):
    profile = Profile.create("anna")
    good = profile.add_take("p1", "one", np.zeros(1600, np.float32) + 0.1, {})
    bad = profile.add_take("p2", "two", np.zeros(1600, np.float32) + 0.1, {})
    bad.wav_path.write_bytes(b"RIFF" + bytes(100))
    (profile.path / "settings.json").write_bytes(b'{"mic')
    archive = tmp_path / "anna.zip"
    left_out = {p.path.name for p in profile.export_archive(archive)}
    assert left_out == {f"{bad.id}.json", f"{bad.id}.wav", "settings.json"}
    copy = Profile.import_archive(archive, name="copy")
    assert [t.id for t in copy.takes()] == [good.id] and copy.settings() == {}
