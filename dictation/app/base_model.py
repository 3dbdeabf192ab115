"""The bundled speech model and its ONNX export in the cache: where they are, and building
the export once (in a subprocess with torch, so the dictating process never imports it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dictation.app import resources
from dictation.app.runtime import ModelMissingError

BUNDLE_NAME = "dictation-tiny-en"
# Written by dictation.adapt.export into model.json; part of the base export's cache key, so a
# new export format never reuses a stale cached base model.
EXPORT_FORMAT_VERSION = 4  # 2: int8 projection only; 3: every decoder matrix int8; 4: batch axis


def bundled_model_dir() -> Path:
    """The committed model bundle (`models/` in a checkout, or a frozen app's data folder)."""
    found = resources.find(f"models/{BUNDLE_NAME}/bundle.json")
    if found is None:
        raise ModelMissingError(
            f"the bundled model (models/{BUNDLE_NAME}/bundle.json) is missing from this installation"
        )
    return found.parent


def bundled_model_version() -> str:
    """Version of the bundled speech model (``bundle.json``), e.g. "0.5.0"."""
    path = bundled_model_dir() / "bundle.json"
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelMissingError(f"the bundled model's {path} is unreadable: {exc}") from exc


@functools.lru_cache(maxsize=8)
def _bundle_digest(stamps: tuple[tuple[str, int, int], ...]) -> str:
    """Content hash of the bundle files, computed once per (path, mtime, size): the GUI asks
    for the base model on every dictation and must not re-read the weights each time."""
    digest = hashlib.sha256()
    for path, _, _ in stamps:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


# The bundle's files an export is built from: the voice space too, since the export holds
# its graph (voice.onnx) when the bundle has one.
KEY_FILES = ("bundle.json", "weights.npz", "voice_space.npz")


def bundle_digest(bundle: Path) -> str:
    """Content hash of the bundle's KEY_FILES that exist: a retrained bundle, or one that
    gained or lost its voice space, must never reuse a stale export."""
    files = tuple(bundle / n for n in KEY_FILES if (bundle / n).is_file())
    stamps = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return _bundle_digest(stamps)


BUILD_SECONDS_ESTIMATE = 30  # export + parity check: 24 s on this project's 2 cores (about 50 s under load)


def base_model_dir(rebuild: bool = False, on_build: Callable[[str], None] | None = None) -> Path:
    """ONNX export of the bundled model, built once into the cache if missing.

    The build needs torch and runs in a subprocess, so this process stays torch-free.
    A frozen app has no torch: it ships a prebuilt export as `models/base-onnx`.
    `rebuild`: export again even if the cache holds one (its files failed to load; the
    new export replaces it only once complete). `on_build(message)` is told before a
    build starts (it takes most of a minute), so a caller can say so.
    """
    from dictation.app.storage import cache_root

    if getattr(sys, "frozen", False):
        shipped = resources.find("models/base-onnx/model.json")
        if shipped is not None:
            return shipped.parent
    bundle = bundled_model_dir()
    version = bundled_model_version()
    out = cache_root() / "models" / f"base-{version}-f{EXPORT_FORMAT_VERSION}-{bundle_digest(bundle)}"
    if (out / "model.json").is_file() and not rebuild:
        return out
    if on_build is not None:
        action = "rebuilding" if rebuild else "preparing"
        on_build(f"{action} the speech model (once, about {BUILD_SECONDS_ESTIMATE} s)...")
    proc = subprocess.run(
        [sys.executable, "-m", "dictation.adapt.model.build_base", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not (out / "model.json").is_file():
        raise ModelMissingError(f"could not build the base model: {proc.stderr.strip()[-2000:]}")
    return out
