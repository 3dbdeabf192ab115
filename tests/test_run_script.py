"""`./run`'s check of Qt's X11 libraries (scripts/qt-libs.sh) before the window opens.

Removing system libraries is not possible here, so `ldd` is replaced by a script that
reports the two libraries a fresh desktop-less Debian lacked; the plugin it inspects is
the venv's real libqxcb.so.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _check(tmp_path: Path, ldd_output: str, **env: str) -> subprocess.CompletedProcess[str]:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    ldd = fake_bin / "ldd"
    ldd.write_text(f"#!/bin/sh\ncat <<'OUT'\n{ldd_output}\nOUT\n")
    ldd.chmod(0o755)
    script = f'source "{ROOT}/scripts/qt-libs.sh"; check_qt_libraries "{ROOT}/.venv"'
    environment = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "DISPLAY": ":99", **env}
    environment.pop("QT_QPA_PLATFORM", None)
    environment.update(env)
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=environment, timeout=30)


def test_missing_xcb_libraries_are_named_as_debian_packages(tmp_path: Path) -> None:
    result = _check(
        tmp_path,
        "\tlibxcb-icccm.so.4 => not found\n\tlibxcb-keysyms.so.1 => not found\n"
        "\tlibxcb-cursor.so.0 => /lib/libxcb-cursor.so.0 (0x0)",
    )
    assert result.returncode == 1
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in result.stderr
    assert "cursor" not in result.stderr  # present libraries are not named


def test_nothing_missing_lets_the_app_start(tmp_path: Path) -> None:
    result = _check(tmp_path, "\tlibxcb-icccm.so.4 => /lib/libxcb-icccm.so.4 (0x0)")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_offscreen_platform_skips_the_xcb_check(tmp_path: Path) -> None:
    result = _check(tmp_path, "\tlibxcb-icccm.so.4 => not found", QT_QPA_PLATFORM="offscreen")
    assert result.returncode == 0
