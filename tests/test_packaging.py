"""Packaging and desktop integration: icon, desktop entry, AppStream metadata,
`dictation desktop install/uninstall`, log files, frozen-app hooks, one-folder build."""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dictation import __version__
from dictation.app import base_model, logs, resources
from dictation.app import desktop as desktop_cli
from dictation.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]
APP_ID = desktop_cli.APP_ID
ICONS = ROOT / "assets" / "icons"
LINUX = ROOT / "packaging" / "linux"
DESKTOP_FILE = LINUX / f"{APP_ID}.desktop"
METAINFO = LINUX / f"{APP_ID}.metainfo.xml"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package})")
    return path


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def _desktop_keys(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# -- icon ---------------------------------------------------------------------------


def test_icon_pngs_exist_in_every_size_and_match_the_svg(qapp) -> None:
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    svg = ICONS / f"{APP_ID}.svg"
    ET.parse(svg)  # well-formed XML
    renderer = QSvgRenderer(str(svg))
    assert renderer.isValid()
    for size in desktop_cli.ICON_SIZES:
        png = ICONS / f"{APP_ID}-{size}.png"
        assert _png_size(png) == (size, size)
        committed = QImage(str(png)).convertToFormat(QImage.Format.Format_ARGB32)
        # Render the SVG with Qt and compare: a stale PNG (SVG edited, PNGs not
        # re-rendered) differs by far more than two renderers' anti-aliasing does.
        fresh = QImage(size, size, QImage.Format.Format_ARGB32)
        fresh.fill(0)
        painter = QPainter(fresh)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        diff = total = 0
        for y in range(size):
            for x in range(size):
                a, b = committed.pixelColor(x, y), fresh.pixelColor(x, y)
                diff += abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue())
                diff += abs(a.alpha() - b.alpha())
                total += 4
            if size > 64 and y > 64:
                break  # enough rows for the big sizes (the loop is pure Python)
        assert diff / total < 12, f"{png.name} does not look like the SVG (mean diff {diff / total:.1f})"
        # Transparent corner, opaque body: the rounded tile is there.
        assert committed.pixelColor(0, 0).alpha() == 0
        assert committed.pixelColor(size // 2, size // 2).alpha() == 255


# -- desktop entry and AppStream metadata --------------------------------------------


def test_desktop_entry_validates_and_names_the_app() -> None:
    tool = _tool("desktop-file-validate", "desktop-file-utils")
    proc = subprocess.run([tool, str(DESKTOP_FILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stdout.lower(), proc.stdout
    keys = _desktop_keys(DESKTOP_FILE.read_text())
    assert keys["Exec"] == "dictation"
    assert keys["Icon"] == APP_ID
    assert keys["Categories"].split(";")[:3] == ["Utility", "Accessibility", "AudioVideo"]
    assert "dictation" in keys["Keywords"].split(";")


def test_metainfo_validates_and_matches_the_project() -> None:
    tool = _tool("appstreamcli", "appstream")
    proc = subprocess.run([tool, "validate", "--no-net", str(METAINFO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == APP_ID
    assert root.findtext("project_license") == "MIT"
    assert root.find("content_rating") is not None
    assert root.findtext("launchable") == DESKTOP_FILE.name
    releases = [r.get("version") for r in root.iter("release")]
    assert releases and releases[0] == __version__, "newest release must be the package version"
    images = [img.text or "" for img in root.iter("image")]
    assert images
    for url in images:  # every screenshot is one of the committed ones
        assert (ROOT / "docs" / "screenshots" / url.rsplit("/", 1)[-1]).is_file(), url


# -- dictation desktop install / uninstall ------------------------------------------


@pytest.fixture
def desktop_env(tmp_path: Path, dictation_home: Path) -> dict[str, str]:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"), DICTATION_HOME=str(dictation_home))
    return env


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_desktop_install_writes_entry_and_icons_and_uninstall_removes_exactly_them(
    dictation_cli: list[str], desktop_env: dict[str, str]
) -> None:
    xdg = Path(desktop_env["XDG_DATA_HOME"])
    # Things the user already has: they must survive install + uninstall untouched.
    (xdg / "applications").mkdir(parents=True)
    other_entry = xdg / "applications" / "other.desktop"
    other_entry.write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n")
    other_icon = xdg / "icons" / "hicolor" / "48x48" / "apps" / "other.png"
    other_icon.parent.mkdir(parents=True)
    other_icon.write_bytes(b"not ours")
    before = _tree(xdg)

    proc = _run(dictation_cli + ["desktop", "install"], desktop_env)
    assert proc.returncode == 0, proc.stderr
    entry = xdg / "applications" / f"{APP_ID}.desktop"
    keys = _desktop_keys(entry.read_text())
    assert keys["Exec"] == dictation_cli[0]  # the absolute path of the running dictation
    assert keys["TryExec"] == dictation_cli[0]
    assert keys["Icon"] == APP_ID
    for size in desktop_cli.ICON_SIZES:
        installed = xdg / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        assert installed.read_bytes() == (ICONS / f"{APP_ID}-{size}.png").read_bytes()
    svg = xdg / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    assert svg.read_bytes() == (ICONS / f"{APP_ID}.svg").read_bytes()
    assert oct(entry.stat().st_mode & 0o777) == oct(0o644)
    assert not list(xdg.rglob(".*.tmp")), "atomic writes left temporary files"
    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout

    # Installing again (e.g. after moving the app) is fine and still uninstalls cleanly.
    assert _run(dictation_cli + ["desktop", "install"], desktop_env).returncode == 0

    proc = _run(dictation_cli + ["desktop", "uninstall"], desktop_env)
    assert proc.returncode == 0, proc.stderr
    assert _tree(xdg) == before  # created dirs gone, the user's files and dirs kept
    assert other_icon.read_bytes() == b"not ours"

    proc = _run(dictation_cli + ["desktop", "uninstall"], desktop_env)
    assert proc.returncode == 1
    assert "no desktop integration to remove" in proc.stderr


def test_uninstall_keeps_a_file_the_user_changed(dictation_cli: list[str], desktop_env: dict[str, str]) -> None:
    xdg = Path(desktop_env["XDG_DATA_HOME"])
    assert _run(dictation_cli + ["desktop", "install"], desktop_env).returncode == 0
    entry = xdg / "applications" / f"{APP_ID}.desktop"
    entry.write_text(entry.read_text() + "NoDisplay=true\n")  # the user's own edit
    proc = _run(dictation_cli + ["desktop", "uninstall"], desktop_env)
    assert proc.returncode == 0, proc.stderr
    assert entry.is_file() and "NoDisplay=true" in entry.read_text()
    assert f"kept {entry}" in proc.stdout
    assert not (xdg / "icons").exists()  # everything else went


def test_exec_quoting_follows_the_desktop_entry_spec() -> None:
    command = ["/opt/my apps/dictation", "100%", 'say "hi"']
    line = [ln for ln in desktop_cli.desktop_entry(command).splitlines() if ln.startswith("Exec=")][0]
    assert line == 'Exec="/opt/my apps/dictation" 100%% "say \\\\"hi\\\\""'


# -- logs ---------------------------------------------------------------------------


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_log_dir_follows_dictation_home(dictation_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert logs.log_dir() == dictation_home / "logs"
    monkeypatch.delenv("DICTATION_HOME")
    import platformdirs

    assert logs.log_dir() == platformdirs.user_log_path("dictation")


def test_log_lines_land_in_the_file_and_rotate(
    dictation_home: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    path = logs.setup_logging()
    assert path == dictation_home / "logs" / "dictation.log"
    assert oct((dictation_home / "logs").stat().st_mode & 0o777) == oct(0o700)
    log = logging.getLogger("dictation.test")
    log.info("first line %d", 42)
    log.debug("hidden without --debug")
    text = path.read_text()
    assert "INFO dictation.test: first line 42" in text
    assert "hidden without --debug" not in text

    monkeypatch.setattr(logs, "MAX_BYTES", 2_000)
    path = logs.setup_logging()  # again: replaces its handlers, does not add more
    assert sum(isinstance(h, logging.handlers.RotatingFileHandler) for h in logging.getLogger().handlers) == 1
    for i in range(400):
        log.warning("line %04d %s", i, "x" * 40)
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["dictation.log"] + [f"dictation.log.{i}" for i in range(1, logs.BACKUP_COUNT + 1)]
    assert all(p.stat().st_size <= 2_000 for p in path.parent.iterdir())
    assert "line 0399" in path.read_text()  # newest in the live file


def test_debug_flag_raises_verbosity(dictation_cli: list[str], desktop_env: dict[str, str]) -> None:
    log_file = Path(desktop_env["DICTATION_HOME"]) / "logs" / "dictation.log"
    quiet = _run(dictation_cli + ["desktop", "install"], desktop_env)
    assert quiet.returncode == 0
    assert "DEBUG" not in quiet.stderr and "INFO" not in quiet.stderr  # console: warnings only
    text = log_file.read_text()
    assert "INFO dictation.app.desktop: desktop integration installed" in text
    assert "DEBUG" not in text

    loud = _run(dictation_cli + ["--debug", "desktop", "uninstall"], desktop_env)
    assert loud.returncode == 0
    assert "DEBUG dictation.app.desktop: removed" in loud.stderr
    assert "DEBUG dictation.app.desktop: removed" in log_file.read_text()


# -- frozen-app hooks ---------------------------------------------------------------


def test_frozen_app_uses_its_shipped_onnx_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "models" / "base-onnx"
    shipped.mkdir(parents=True)
    (shipped / "model.json").write_text(json.dumps({"model_version": "test"}))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert base_model.base_model_dir() == shipped
    # The desktop integration finds the frozen app's own copy of the assets first.
    assert resources.roots()[0] == tmp_path


def test_adapt_in_a_frozen_app_explains_instead_of_failing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    status = cli.main(["adapt", "--profile", "anyone"])
    err = capsys.readouterr().err
    assert status == 1
    assert "adaptation needs the full install" in err and "pip install" in err
    assert "Traceback" not in err


# -- one-folder build ---------------------------------------------------------------


@pytest.mark.slow
def test_onefolder_build(tmp_path: Path, base_model: Path) -> None:
    """Freeze the app with PyInstaller; the result starts, transcribes, and has no torch."""
    python = Path(sys.executable)
    if subprocess.run([python, "-c", "import PyInstaller"], capture_output=True).returncode != 0:
        pytest.skip("PyInstaller is not installed (pip install -e '.[packaging]')")
    espeak = _tool("espeak-ng", "espeak-ng")
    dist, work = tmp_path / "dist", tmp_path / "work"
    started = time.monotonic()
    # The session's base export (same `python -m dictation.adapt.model.build_base` the script
    # would run) is reused to save half a minute.
    proc = subprocess.run(
        [
            str(ROOT / "packaging" / "build_onefolder.sh"),
            "--dist",
            str(dist),
            "--work",
            str(work),
            "--base-onnx",
            str(base_model),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, DICTATION_BUILD_PYTHON=str(python)),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(f"build: {time.monotonic() - started:.0f} s; {proc.stderr.strip().splitlines()[-1]}")
    app_dir = dist / "dictation"
    app = app_dir / "dictation"
    names = {p.name for p in app_dir.rglob("*")}
    assert not any(n == "torch" or n.startswith("libtorch") for n in names), "torch was bundled"
    shipped = app_dir / "_internal" / "models" / "base-onnx" / "model.json"
    assert (
        json.loads(shipped.read_text())["model_version"]
        == json.loads((ROOT / "models" / "dictation-tiny-en" / "bundle.json").read_text())["version"]
    )

    env = dict(os.environ, DICTATION_HOME=str(tmp_path / "home"))
    env.pop("DICTATION_CACHE", None)
    version = subprocess.run([app, "--version"], capture_output=True, text=True, timeout=60, env=env)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"dictation {__version__}"

    wav = tmp_path / "speech.wav"
    subprocess.run(
        [espeak, "-v", "en-us", "-w", str(wav), "Please send the report to the office before noon."],
        check=True,
        capture_output=True,
    )
    frozen = subprocess.run(
        [app, "transcribe", "--json", str(wav)], capture_output=True, text=True, timeout=300, env=env
    )
    assert frozen.returncode == 0, frozen.stderr
    record = json.loads(frozen.stdout)
    # The frozen app hears what the full install hears with the same model.
    from dictation.app.audio import load_audio
    from dictation.app.runtime import Transcriber

    expected = Transcriber(base_model).transcribe(load_audio(wav)).text
    assert record["model"] == "base" and record["text"] == expected
    assert "report" in record["text"].lower() and "office" in record["text"].lower()
    assert not (tmp_path / "home" / "cache").exists(), "the frozen app tried to build a model"

    adapt = subprocess.run([app, "adapt", "--profile", "x"], capture_output=True, text=True, timeout=60, env=env)
    assert adapt.returncode == 1 and "adaptation needs the full install" in adapt.stderr
    assert "Traceback" not in adapt.stderr
