"""The system-wide key: parsing, auto-repeat filtering, the X11 grab (real, under Xvfb),
the backend chooser."""

from __future__ import annotations

import os
import threading
import time

import pytest

from dictation.app.hotkeys import HotkeyError, KeySpecError, choose_backend, parse_key
from dictation.app.hotkeys.repeat import PRESS, RELEASE, RepeatFilter

# -- key parsing


@pytest.mark.parametrize(
    ("text", "modifiers", "key", "keysym"),
    [
        ("ctrl+alt+space", ("ctrl", "alt"), "space", 0x20),
        ("Super+H", ("super",), "h", ord("h")),
        ("F9", (), "F9", 0xFFC6),
        ("f9", (), "F9", 0xFFC6),
        ("SHIFT+ctrl+V", ("ctrl", "shift"), "v", ord("v")),  # canonical order
        ("control+Win+return", ("ctrl", "super"), "Return", 0xFF0D),
        ("meta+pause", ("super",), "Pause", 0xFF13),
        (" alt + Insert ", ("alt",), "Insert", 0xFF63),
        ("control_r", (), "Control_R", 0xFFE4),
        ("shift", (), "Shift_L", 0xFFE1),  # a lone modifier is a key itself
        ("ctrl++", ("ctrl",), "plus", ord("+")),
        ("eacute", (), "eacute", 0xE9),
    ],
)
def test_parse_key(text: str, modifiers: tuple[str, ...], key: str, keysym: int) -> None:
    combo = parse_key(text)
    assert (combo.modifiers, combo.key, combo.keysym) == (modifiers, key, keysym)
    assert parse_key(str(combo)) == combo


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no key given"),
        ("   ", "no key given"),
        ("ctrl+", "empty part"),
        ("+a", "empty part"),
        ("ctrl+alt", "no key after its modifiers"),
        ("ctrl+nosuchkey", "unknown key name 'nosuchkey'"),
        ("a+b", "more than one key"),
        ("ctrl+ctrl+a", "names ctrl twice"),
        ("ctrl+alt+F9", "switch virtual terminals"),
    ],
)
def test_parse_key_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(KeySpecError, match=message):
        parse_key(text)


def test_xdg_trigger_uses_the_shortcuts_spec_names() -> None:
    assert parse_key("ctrl+alt+space").xdg_trigger() == "CTRL+ALT+space"
    assert parse_key("super+shift+F9").xdg_trigger() == "SHIFT+LOGO+F9"


# -- auto-repeat filtering


def test_repeat_pairs_within_the_window_are_dropped() -> None:
    f = RepeatFilter(window_ms=40)
    assert f.press(1000) == [PRESS]
    for t in (1500, 1540, 1580):  # X auto-repeat: release and press with the same server time
        assert f.release(t, now=t / 1000) == []
        assert f.press(t) == []
    assert f.down
    assert f.release(2000, now=2.0) == []
    assert f.flush(now=2.01) == []  # still inside the window
    assert f.flush(now=2.05) == [RELEASE]
    assert not f.down and f.deadline is None


def test_detectable_repeat_presses_count_once() -> None:
    f = RepeatFilter()
    assert f.press(0) == [PRESS]
    assert f.press(600) == [] and f.press(640) == []
    assert f.release(700, now=0.7) == []
    assert f.flush(now=1.0) == [RELEASE]


def test_a_new_press_after_the_window_is_a_second_hold() -> None:
    f = RepeatFilter(window_ms=40)
    f.press(0)
    f.release(100, now=0.1)
    # The flush came late (busy thread); the press 200 ms later is a new hold, not a repeat.
    assert f.press(300) == [RELEASE, PRESS]
    assert f.down


def test_release_without_press_and_double_release_are_ignored() -> None:
    f = RepeatFilter()
    assert f.release(10, now=0.0) == [] and f.flush(now=1.0) == []
    f.press(20)
    f.release(30, now=0.03)
    f.release(31, now=0.031)
    assert f.flush(now=1.0) == [RELEASE]
    assert f.flush(now=2.0) == []


# -- the X11 grab, for real


@pytest.fixture(scope="session")
def _x_server_kept_up():
    """One connection held to the end of the run: an X server resets itself when its last
    client leaves (Xvfb without -noreset), and a connection made during the reset fails."""
    from dictation.app.hotkeys.xutil import X11Unavailable, open_display

    for _ in range(20):  # the server may be resetting after an earlier test's last client
        try:
            keeper = open_display()
            break
        except (X11Unavailable, ConnectionError, OSError):
            time.sleep(0.1)
    else:
        yield
        return
    yield
    keeper.close()


@pytest.fixture
def xdisplay(_x_server_kept_up):
    """A python-xlib connection to the test X server (Xvfb from ./run-tests)."""
    from dictation.app.hotkeys.xutil import X11Unavailable, open_display

    try:
        display = open_display()
    except X11Unavailable as exc:
        pytest.skip(f"no X display: {exc}")
    yield display
    display.close()


def _keycode(display, name: str) -> int:
    from Xlib import XK

    return display.keysym_to_keycode(XK.string_to_keysym(name))


def _fake(display, kind: str, names: list[str]) -> None:
    from Xlib import X
    from Xlib.ext import xtest

    for name in names:
        xtest.fake_input(display, X.KeyPress if kind == "press" else X.KeyRelease, _keycode(display, name))
    display.sync()


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.changed = threading.Condition()

    def press(self) -> None:
        with self.changed:
            self.events.append(PRESS)
            self.changed.notify_all()

    def release(self) -> None:
        with self.changed:
            self.events.append(RELEASE)
            self.changed.notify_all()

    def wait(self, count: int, timeout: float = 5.0) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.events) >= count, timeout=timeout)
            return list(self.events)


def _hold(display, names: list[str], seconds: float) -> None:
    _fake(display, "press", names)
    time.sleep(seconds)  # longer than the server's auto-repeat delay (660 ms): repeats happen
    _fake(display, "release", list(reversed(names)))


@pytest.mark.parametrize("detectable", [True, False], ids=["xkb-detectable", "release-press-pairs"])
def test_x11_grab_reports_one_press_and_one_release_per_hold(xdisplay, monkeypatch, detectable: bool) -> None:
    from dictation.app.hotkeys import x11, xutil

    if not detectable:  # the server's own release+press repeats, filtered by RepeatFilter
        monkeypatch.setattr(xutil, "set_detectable_autorepeat", lambda display: False)
    backend = x11.X11Hotkey(parse_key("ctrl+alt+space"))
    recorder = Recorder()
    backend.start(recorder.press, recorder.release)
    try:
        assert backend.detectable_autorepeat is detectable
        _hold(xdisplay, ["Control_L", "Alt_L", "space"], 1.2)
        assert recorder.wait(2) == [PRESS, RELEASE]
        time.sleep(0.2)  # nothing more may come after the release
        assert recorder.events == [PRESS, RELEASE]
        _hold(xdisplay, ["Control_L", "Alt_L", "space"], 0.1)
        assert recorder.wait(4) == [PRESS, RELEASE, PRESS, RELEASE]
    finally:
        backend.stop()


def test_x11_grab_works_with_numlock_and_capslock_on(xdisplay) -> None:
    from dictation.app.hotkeys.x11 import X11Hotkey

    backend = X11Hotkey(parse_key("super+F10"))
    recorder = Recorder()
    backend.start(recorder.press, recorder.release)
    try:
        for lock in ("Num_Lock", "Caps_Lock"):
            _fake(xdisplay, "press", [lock])
            _fake(xdisplay, "release", [lock])  # lock is now on
        _hold(xdisplay, ["Super_L", "F10"], 0.1)
        assert recorder.wait(2) == [PRESS, RELEASE]
    finally:
        for lock in ("Num_Lock", "Caps_Lock"):  # and off again
            _fake(xdisplay, "press", [lock])
            _fake(xdisplay, "release", [lock])
        backend.stop()


def test_x11_grab_of_a_key_taken_by_another_client_is_a_clear_error(xdisplay) -> None:
    from Xlib import X

    from dictation.app.hotkeys.x11 import X11Hotkey

    root = xdisplay.screen().root
    keycode = _keycode(xdisplay, "F11")
    root.grab_key(keycode, X.ControlMask, True, X.GrabModeAsync, X.GrabModeAsync)
    xdisplay.sync()
    backend = X11Hotkey(parse_key("ctrl+F11"))
    with pytest.raises(HotkeyError, match="already taken by another application"):
        backend.start(lambda: None, lambda: None)
    root.ungrab_key(keycode, X.ControlMask)
    xdisplay.sync()
    backend.start(lambda: None, lambda: None)  # free again: the retry works
    backend.stop()
    backend.stop()  # idempotent


def test_x11_grab_stops_cleanly_and_frees_the_key(xdisplay) -> None:
    from dictation.app.hotkeys.x11 import X11Hotkey

    first = X11Hotkey(parse_key("ctrl+shift+F12"))
    first.start(lambda: None, lambda: None)
    first.stop()
    second = X11Hotkey(parse_key("ctrl+shift+F12"))
    second.start(lambda: None, lambda: None)
    second.stop()


# -- choosing a backend


def test_chooser_takes_x11_in_an_x11_session(xdisplay, monkeypatch) -> None:
    monkeypatch.setenv("XDG_SESSION_TYPE", "x11")
    assert choose_backend(parse_key("F9")).name == "x11"


def test_chooser_on_wayland_without_portal_or_evdev_names_the_fixes(monkeypatch, tmp_path) -> None:
    from dictation.app.hotkeys import evdev

    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    monkeypatch.setattr(evdev, "DEVICES_LIST", tmp_path / "devices")  # no keyboards at all
    with pytest.raises(HotkeyError) as raised:
        choose_backend(parse_key("F9"))
    message = str(raised.value)
    assert "portal:" in message and "evdev:" in message
    assert "x11" not in message.split(".", 1)[1]  # Xwayland's DISPLAY is not a way in


def test_session_type_decides_without_xdg_session_type(monkeypatch) -> None:
    from dictation.app.hotkeys.x11 import session_is_x11

    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    monkeypatch.setenv("DISPLAY", ":5")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert session_is_x11()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert not session_is_x11()
    monkeypatch.setenv("XDG_SESSION_TYPE", "X11")
    assert session_is_x11()
    assert os.environ["DISPLAY"] == ":5"
