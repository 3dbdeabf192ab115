"""Is this file usable? Checks of the files a profile holds (WAV, ONNX, NumPy, JSON).

Each check returns why a file cannot be used, or None. ``onnx_structure_problem`` is
cheap (it walks the top level of the protobuf without reading the weights, which
catches empty, foreign and truncated files); ``onnx_load_problem`` loads the model in
onnxruntime (a fraction of a second per file), the real test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import BinaryIO

# ModelProto's top-level fields (onnx.proto): ir_version 1, producer_name 2,
# producer_version 3, domain 4, model_version 5, doc_string 6, graph 7, opset_import 8,
# metadata_props 14, training_info 20, functions 25.
_ONNX_FIELDS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25})
_ONNX_GRAPH_FIELD = 7
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


def wav_problem(path: Path) -> str | None:
    """Why a WAV cannot be used (missing, undecodable, no samples), or None."""
    import soundfile  # lazily: keeps `import profiles` light

    if not path.is_file():
        return "audio file is missing"
    try:
        data, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        return f"audio file cannot be read: {exc}"
    if data.shape[0] == 0:
        return "audio file holds no samples"
    return None


def json_problem(path: Path) -> str | None:
    try:
        json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return "file is missing"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"not readable JSON: {exc}"
    return None


def npy_problem(path: Path) -> str | None:
    """Why a .npy array file cannot be used (header, or fewer bytes than it declares)."""
    import numpy as np

    try:
        np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        return f"not a readable NumPy array: {exc}"
    return None


def onnx_structure_problem(path: Path) -> str | None:
    """Why a file is not an ONNX model, judged by its protobuf framing; None if it looks whole.

    Reads only the field headers of the top level and seeks over their contents, so a
    100 MB model costs a few reads. Finds empty and foreign files (wrong wire types or
    fields) and truncated ones (a field runs past the end of the file).
    """
    try:
        size = path.stat().st_size
        if size == 0:
            return "model file is empty"
        with open(path, "rb") as handle:
            return _walk_model_proto(handle, size)
    except OSError as exc:
        return f"model file cannot be read: {exc}"


def _walk_model_proto(handle: BinaryIO, size: int) -> str | None:
    seen_graph = False
    while handle.tell() < size:
        key = _read_varint(handle)
        if key is None:
            return "not an ONNX model (broken field header)"
        field, wire_type = key >> 3, key & 7
        if field not in _ONNX_FIELDS:
            return f"not an ONNX model (unexpected field {field} at byte {handle.tell()})"
        if wire_type == _VARINT:
            if _read_varint(handle) is None:
                return "model file is truncated"
        elif wire_type in (_FIXED64, _FIXED32, _LENGTH_DELIMITED):
            if wire_type == _LENGTH_DELIMITED:
                length = _read_varint(handle)
                if length is None:
                    return "model file is truncated"
            else:
                length = 8 if wire_type == _FIXED64 else 4
            end = handle.tell() + length
            if end > size:
                return f"model file is truncated ({size} bytes; a field runs to byte {end})"
            handle.seek(end)
        else:
            return f"not an ONNX model (wire type {wire_type} at byte {handle.tell()})"
        seen_graph = seen_graph or field == _ONNX_GRAPH_FIELD
    return None if seen_graph else "not an ONNX model (no graph)"


def _read_varint(handle: BinaryIO) -> int | None:
    value = 0
    for shift in range(0, 70, 7):
        byte = handle.read(1)
        if not byte:
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
    return None


def onnx_load_problem(path: Path) -> str | None:
    """Why onnxruntime cannot load a model file, or None (the structure is checked first)."""
    problem = onnx_structure_problem(path)
    if problem:
        return problem
    import onnxruntime as ort  # lazily: loading it costs ~0.2 s

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 4  # the reason is reported here, not on stderr
    try:
        ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own (non-exported) exception types
        return f"onnxruntime cannot load this model: {str(exc).strip().splitlines()[0][:300]}"
    return None
