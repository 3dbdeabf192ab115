"""Text delivery on Wayland, for real: sway's headless backend as the compositor, a Qt
text field as the other application (its Wayland platform plugin), `wtype` typing and
`wl-clipboard` pasting, as `dictation listen` and the app do on wlroots desktops.

Sway refuses to run as root, so under root it runs as `nobody` (setpriv) in a runtime
folder of its own; root may still connect to its socket.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

UNICODE = "Héllo wörld, ß “quoted” — 😀 naïve café"
TOOLS = ("sway", "wtype", "wl-copy", "wl-paste", "setpriv")


@pytest.fixture(scope="module")
def sway() -> Iterator[dict[str, str]]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: apt-get install sway wtype wl-clipboard")
    runtime = Path(tempfile.mkdtemp(prefix="dictation-sway."))
    runtime.chmod(0o700)
    config = runtime / "config"
    config.write_text("output HEADLESS-1 resolution 1280x800\n")
    argv = ["sway", "-c", str(config)]
    if os.geteuid() == 0:
        os.chown(runtime, 65534, 65534)
        os.chown(config, 65534, 65534)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    env = dict(
        os.environ,
        XDG_RUNTIME_DIR=str(runtime),
        HOME=str(runtime),
        WLR_BACKENDS="headless",
        WLR_LIBINPUT_NO_DEVICES="1",
        WLR_RENDERER="pixman",
    )
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    log = runtime / "sway.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=runtime)
    deadline = time.monotonic() + 15
    sockets: list[Path] = []
    while time.monotonic() < deadline and process.poll() is None:
        sockets = [p for p in runtime.glob("wayland-*") if not p.name.endswith(".lock")]
        if sockets:
            break
        time.sleep(0.1)
    if not sockets:
        process.kill()
        process.wait()
        pytest.fail(f"sway did not start headless: {log.read_text(errors='replace')[-1500:]}")
    yield {"XDG_RUNTIME_DIR": str(runtime), "WAYLAND_DISPLAY": sockets[0].name}
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def wayland_session(sway: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process as a client of the headless sway, its X display hidden."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    for name, value in sway.items():
        monkeypatch.setenv(name, value)
    return sway


@pytest.fixture
def wayland_probe(wayland_session: dict[str, str], tmp_path: Path):
    from dictation.app.delivery.probe import Probe

    window = Probe(tmp_path / "probe.jsonl", platform="wayland")
    yield window
    window.close()


def _clipboard() -> str:
    return subprocess.run(["wl-paste", "--no-newline"], capture_output=True, timeout=10).stdout.decode()


def test_typing_on_wayland_delivers_any_unicode_from_its_first_character(wayland_probe) -> None:
    from dictation.app.delivery import Delivery

    delivery = Delivery("type")
    try:
        assert delivery.backend.name == "wayland"
        result = delivery.deliver(UNICODE)
    finally:
        delivery.close()
    assert result.ok, result.notice
    assert wayland_probe.wait_text(UNICODE) is not None, wayland_probe.text


def test_pasting_on_wayland_delivers_the_text_and_gives_the_clipboard_back(wayland_probe) -> None:
    from dictation.app.delivery import Delivery

    subprocess.run(["wl-copy", "what the user had copied"], check=True, timeout=10)
    delivery = Delivery("paste", "ctrl+v")
    try:
        result = delivery.deliver(UNICODE)
    finally:
        delivery.close()
    assert result.ok, result.notice
    assert wayland_probe.wait_text(UNICODE) is not None, wayland_probe.text
    assert _clipboard() == "what the user had copied"
