"""Reader for CTranslate2 `model.bin` files (binary format version 5-6).

Layout: u32 version, string spec name, u32 revision, u32 variable count, then per
variable: string name, u8 rank, u32 dims, u8 dtype, u32 byte count, raw little-endian
data; then u32 alias count and (alias, target) string pairs. Strings are a u16 length
(including a trailing NUL) followed by the bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class CT2FormatError(ValueError):
    """The file is not a CTranslate2 model this reader understands."""


def _read_string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<H", buf, pos)
    pos += 2
    raw = bytes(buf[pos : pos + n])
    return raw.rstrip(b"\0").decode("utf-8"), pos + n


def read_ct2_model(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """Return (spec name, {variable name: array}) with aliases resolved."""
    data = Path(path).read_bytes()
    buf = memoryview(data)
    try:
        (version,) = struct.unpack_from("<I", buf, 0)
        if version not in (5, 6):
            raise CT2FormatError(f"{path}: unsupported CTranslate2 binary version {version}")
        spec, pos = _read_string(buf, 4)
        pos += 4  # revision
        (count,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        variables: dict[str, np.ndarray] = {}
        for _ in range(count):
            name, pos = _read_string(buf, pos)
            (rank,) = struct.unpack_from("<B", buf, pos)
            pos += 1
            shape = struct.unpack_from(f"<{rank}I", buf, pos)
            pos += 4 * rank
            (dtype_id,) = struct.unpack_from("<B", buf, pos)
            (nbytes,) = struct.unpack_from("<I", buf, pos + 1)
            pos += 5
            if dtype_id not in _DTYPES:
                raise CT2FormatError(f"{path}: variable {name} has unknown dtype id {dtype_id}")
            arr = np.frombuffer(
                data, dtype=_DTYPES[dtype_id], count=nbytes // np.dtype(_DTYPES[dtype_id]).itemsize, offset=pos
            )
            variables[name] = arr.reshape(shape)
            pos += nbytes
        (n_alias,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        for _ in range(n_alias):
            alias, pos = _read_string(buf, pos)
            target, pos = _read_string(buf, pos)
            variables[alias] = variables[target]
    except CT2FormatError:
        raise
    except (struct.error, ValueError) as exc:
        raise CT2FormatError(f"{path}: truncated or corrupt CTranslate2 model ({exc})") from exc
    return spec, variables
