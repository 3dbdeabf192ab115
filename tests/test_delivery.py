"""Text into another application, for real: under Xvfb, a separate Qt process (the probe
window, another X client) has the focus, and what it receives is read back.

Every output mode round-trips the same Unicode string (accents, ß, curly quotes, an em
dash, an emoji); paste mode gives the user's clipboard back with all its formats; what
cannot be delivered ends up on the clipboard with a notice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from dictation.app.delivery import Delivery, DeliveryResult

UNICODE = "Héllo wörld, ß “quoted” — 😀 naïve café"
MANY = "αβγδεζηθικλμνξοπρστυφχψω ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ жзийклмнопрстуфхцчшщ"


@pytest.fixture
def clipboard(xdisplay):
    """The test's own clipboard connection: the 'user' who copied something before."""
    from dictation.app.delivery.x11_clipboard import X11Clipboard

    clip = X11Clipboard()
    yield clip
    clip.close()


@pytest.fixture
def delivery_factory():
    made: list[Delivery] = []

    def make(output: str, paste_key: str = "ctrl+v") -> Delivery:
        made.append(Delivery(output, paste_key))
        return made[-1]

    yield make
    for delivery in made:
        delivery.close()


def _press(display, combo: str) -> None:
    from dictation.app.delivery.x11_typing import XTestTyper
    from dictation.app.hotkeys import parse_key

    XTestTyper(display).press_combo(parse_key(combo))


def test_type_mode_delivers_unicode_intact(probe, delivery_factory) -> None:
    result = delivery_factory("type").deliver(UNICODE)
    assert result == DeliveryResult(UNICODE, "typed")
    assert probe.wait_text(UNICODE) is not None, probe.text


def test_type_mode_pastes_a_text_with_more_new_characters_than_free_keycodes(probe, delivery_factory) -> None:
    # The Xvfb keymap has about 20 free keycodes; re-using them within one text would
    # race with the client's keymap reading, so such a text is pasted instead.
    result = delivery_factory("type").deliver(MANY)
    assert result == DeliveryResult(MANY, "pasted")
    assert probe.wait_text(MANY) is not None, probe.text


def test_paste_mode_delivers_unicode_and_gives_the_clipboard_back(probe, clipboard, delivery_factory) -> None:
    from dictation.app.delivery.x11_clipboard import Item

    users = {
        "UTF8_STRING": Item("UTF8_STRING", 8, b"what the user had copied"),
        "text/html": Item("text/html", 8, b"<b>what the user had</b> copied"),
        # larger than one transfer chunk: read and served with INCR
        "image/png": Item("image/png", 8, bytes(range(256)) * 1200),
    }
    clipboard.own(users)
    delivery = delivery_factory("paste")
    result = delivery.deliver(UNICODE)
    assert result == DeliveryResult(UNICODE, "pasted")
    assert probe.wait_text(UNICODE) is not None, probe.text
    assert clipboard.read() == users  # every format back, byte for byte


def test_paste_mode_with_an_empty_clipboard_leaves_it_empty(probe, clipboard, delivery_factory) -> None:
    clipboard.own(None)
    assert delivery_factory("paste").deliver(UNICODE).ok
    assert probe.wait_text(UNICODE) is not None, probe.text
    assert clipboard.read() is None


def test_paste_key_is_configurable(probe, delivery_factory) -> None:
    result = delivery_factory("paste", paste_key="shift+Insert").deliver(UNICODE)
    assert result.how == "pasted"
    assert probe.wait_text(UNICODE) is not None, probe.text


def test_clipboard_mode_puts_unicode_on_the_clipboard(probe, clipboard, xdisplay, delivery_factory) -> None:
    result = delivery_factory("clipboard").deliver(UNICODE)
    assert result == DeliveryResult(UNICODE, "clipboard")
    assert clipboard.read_text() == UNICODE
    _press(xdisplay, "ctrl+v")  # the user pastes it into the other application
    assert probe.wait_text(UNICODE) is not None, probe.text


def test_without_a_focused_window_the_text_goes_to_the_clipboard(xdisplay, clipboard, delivery_factory) -> None:
    from Xlib import X

    xdisplay.set_input_focus(X.NONE, X.RevertToNone, X.CurrentTime)
    xdisplay.sync()
    for output in ("type", "paste"):
        result = delivery_factory(output).deliver(f"{output}: {UNICODE}")
        assert result.how == "clipboard"
        assert "no window has the keyboard focus" in result.notice
        assert "it is on the clipboard" in result.notice
        assert clipboard.read_text() == f"{output}: {UNICODE}"


def test_an_application_that_does_not_paste_leaves_the_text_on_the_clipboard(
    xdisplay, clipboard, delivery_factory
) -> None:
    from Xlib import X

    # A plain window that takes the focus and ignores keys: Ctrl+V does nothing there.
    window = xdisplay.screen().root.create_window(10, 10, 200, 50, 0, X.CopyFromParent, event_mask=X.KeyPressMask)
    window.map()
    xdisplay.sync()
    window.set_input_focus(X.RevertToParent, X.CurrentTime)
    xdisplay.sync()
    clipboard.set_text("the user's clipboard")
    result = delivery_factory("paste").deliver(UNICODE)
    assert result.how == "clipboard"
    assert "did not paste" in result.notice
    assert clipboard.read_text() == UNICODE  # not lost: there, for the user to paste
    window.destroy()
    xdisplay.sync()


@pytest.mark.skipif(shutil.which("xterm") is None or shutil.which("xdotool") is None, reason="needs xterm and xdotool")
def test_type_mode_into_a_plain_xlib_client(xdisplay, tmp_path: Path, delivery_factory) -> None:
    """xterm reads the keymap through Xlib, not xkbcommon as Qt does: both must get the text."""
    out = tmp_path / "line.txt"
    env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8")
    script = f'read line; printf "%s" "$line" > {out}'
    terminal = subprocess.Popen(
        ["xterm", "-u8", "-title", "dictation-xterm", "-e", "sh", "-c", script],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        found = subprocess.run(
            ["xdotool", "search", "--sync", "--name", "^dictation-xterm$"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        window = found.stdout.split()[0]
        subprocess.run(["xdotool", "windowfocus", "--sync", window], check=True, timeout=30)
        time.sleep(0.3)  # the shell inside must be reading before the keys come
        result = delivery_factory("type").deliver(UNICODE + "\n")
        assert result.ok, result.notice
        terminal.wait(timeout=10)
        assert out.read_text(encoding="utf-8") == UNICODE
    finally:
        if terminal.poll() is None:
            terminal.kill()
            terminal.wait()


def _free_display() -> int:
    n = 150
    while Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
        n += 1
    return n


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_an_x_server_without_xtest_falls_back_to_the_clipboard(monkeypatch) -> None:
    """Key injection refused: an X server started without the XTEST extension."""
    from Xlib import X

    from dictation.app.delivery.x11_clipboard import X11Clipboard
    from dictation.app.hotkeys.xutil import open_display

    number = _free_display()
    server = subprocess.Popen(
        ["Xvfb", f":{number}", "-extension", "XTEST", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            assert time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        monkeypatch.setenv("DISPLAY", f":{number}")
        display = open_display()
        assert display.query_extension("XTEST") is None
        window = display.screen().root.create_window(0, 0, 100, 30, 0, X.CopyFromParent)
        window.map()
        display.sync()
        window.set_input_focus(X.RevertToParent, X.CurrentTime)
        display.sync()
        reader = X11Clipboard()
        for output in ("type", "paste"):
            delivery = Delivery(output)
            result = delivery.deliver(UNICODE)
            assert result.how == "clipboard"
            assert "XTEST" in result.notice
            assert reader.read_text() == UNICODE
            delivery.close()
        reader.close()
        display.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
