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


# -- evdev: the kernel's event format, through a pipe (no /dev/input here)

PROC_DEVICES = """\
I: Bus=0019 Vendor=0000 Product=0001 Version=0000
N: Name="Power Button"
P: Phys=LNXPWRBN/button/input0
H: Handlers=kbd event0
B: PROP=0
B: EV=3
B: KEY=10000000000000 0

I: Bus=0011 Vendor=0001 Product=0001 Version=ab41
N: Name="AT Translated Set 2 keyboard"
P: Phys=isa0060/serio0/input0
H: Handlers=sysrq kbd leds event3
B: PROP=0
B: EV=120013
B: KEY=402000000 3803078f800d001 feffffdfffefffff fffffffffffffffe
B: MSC=10
B: LED=7

I: Bus=0003 Vendor=046d Product=c52b Version=0111
N: Name="Logitech USB Receiver Mouse"
H: Handlers=mouse0 event5
B: EV=17
B: KEY=ffff0000 0 0 0 0
"""


def test_evdev_finds_keyboards_not_power_buttons_or_mice(tmp_path) -> None:
    from dictation.app.hotkeys import evdev

    listing = tmp_path / "devices"
    listing.write_text(PROC_DEVICES)
    found = evdev.keyboards(listing)
    assert [(d.name, d.path.name) for d in found] == [("AT Translated Set 2 keyboard", "event3")]


def test_evdev_without_permission_names_the_one_line_fix(tmp_path, monkeypatch) -> None:
    from dictation.app.hotkeys import evdev

    listing = tmp_path / "devices"
    listing.write_text(PROC_DEVICES)
    monkeypatch.setattr(evdev, "DEVICES_LIST", listing)
    monkeypatch.setattr(evdev, "INPUT_DIR", tmp_path / "input")  # device nodes we cannot open
    usable, why = evdev.EvdevHotkey.available()
    assert not usable
    assert "sudo usermod -aG input $USER" in why and "event3" in why


def _events(*triples: tuple[int, int, int]) -> bytes:
    from dictation.app.hotkeys.evdev import EVENT

    out = b""
    for kind, code, value in triples:
        out += EVENT.pack(0, 0, kind, code, value)
        out += EVENT.pack(0, 0, 0, 0, 0)  # SYN_REPORT, as the kernel sends
    return out


def test_evdev_reports_the_combination_and_ignores_kernel_repeats(tmp_path) -> None:
    from dictation.app.hotkeys.evdev import EV_KEY, LINUX_KEYS, EvdevHotkey

    combo = parse_key("ctrl+F9")
    f9, ctrl, shift = LINUX_KEYS[combo.keysym], 29, 42
    read_fd, write_fd = os.pipe()
    backend = EvdevHotkey(combo)
    recorder = Recorder()
    backend.start_on([read_fd], f9, recorder.press, recorder.release)
    try:
        os.write(write_fd, _events((EV_KEY, f9, 1), (EV_KEY, f9, 0)))  # F9 alone: not ours
        os.write(write_fd, _events((EV_KEY, shift, 1), (EV_KEY, ctrl, 1), (EV_KEY, f9, 1), (EV_KEY, f9, 0)))
        os.write(write_fd, _events((EV_KEY, shift, 0), (EV_KEY, ctrl, 0)))  # ctrl+shift+F9: not ours either
        held = _events((EV_KEY, ctrl, 1), (EV_KEY, f9, 1), (EV_KEY, f9, 2), (EV_KEY, f9, 2), (EV_KEY, f9, 2))
        os.write(write_fd, held[:37])  # an event split across reads
        os.write(write_fd, held[37:])
        assert recorder.wait(1) == [PRESS]
        os.write(write_fd, _events((EV_KEY, ctrl, 0), (EV_KEY, f9, 0)))  # ctrl let go first: still the release
        assert recorder.wait(2) == [PRESS, RELEASE]
        time.sleep(0.1)
        assert recorder.events == [PRESS, RELEASE]
    finally:
        backend.stop()
        os.close(write_fd)


def test_evdev_knows_the_keys_users_pick() -> None:
    from dictation.app.hotkeys.evdev import LINUX_KEYS

    expected = {"F9": 67, "F12": 88, "Pause": 119, "Scroll_Lock": 70, "space": 57, "a": 30, "0": 11, "1": 2}
    assert {name: LINUX_KEYS[parse_key(name).keysym] for name in expected} == expected


# -- the GlobalShortcuts portal, against a portal on a private D-Bus session bus

PORTAL = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"


@pytest.fixture
def session_bus(monkeypatch, tmp_path):
    """A private dbus-daemon; DBUS_SESSION_BUS_ADDRESS points at it."""
    import shutil
    import subprocess

    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed")
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1", f"--address=unix:dir={tmp_path}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    address = daemon.stdout.readline().strip()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    yield address
    daemon.terminate()
    daemon.wait(timeout=10)


class FakePortal:
    """The GlobalShortcuts side of xdg-desktop-portal, as the specification describes it
    (Request objects answering through Response signals), on a real bus."""

    def __init__(self, address: str, bind_response: int = 0) -> None:
        from jeepney import message_bus
        from jeepney.io.blocking import Proxy, open_dbus_connection

        self.connection = open_dbus_connection(address)
        Proxy(message_bus, self.connection).RequestName(PORTAL)
        self.bind_response = bind_response
        self.bound: list = []
        self.closed: list[str] = []
        self.session = ""
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _send(self, message) -> None:
        with self._send_lock:
            self.connection.send(message)

    def _respond(self, call, path: str, code: int, results: dict) -> None:
        from jeepney import DBusAddress, new_method_return, new_signal

        self._send(new_method_return(call, "o", (path,)))
        request = DBusAddress(path, interface="org.freedesktop.portal.Request")
        self._send(new_signal(request, "Response", "ua{sv}", (code, results)))

    def _serve(self) -> None:
        from jeepney import new_error, new_method_return
        from jeepney.low_level import HeaderFields, MessageType

        while not self._stop.is_set():
            try:
                call = self.connection.receive(timeout=0.05)
            except TimeoutError:
                continue
            if call.header.message_type != MessageType.method_call:
                continue
            fields = call.header.fields
            member, sender = fields[HeaderFields.member], fields[HeaderFields.sender][1:].replace(".", "_")
            if member == "Get" and tuple(call.body) == ("org.freedesktop.portal.GlobalShortcuts", "version"):
                self._send(new_method_return(call, "v", (("u", 1),)))
            elif member == "CreateSession":
                options = call.body[0]
                self.session = f"{PORTAL_PATH}/session/{sender}/{options['session_handle_token'][1]}"
                path = f"{PORTAL_PATH}/request/{sender}/{options['handle_token'][1]}"
                self._respond(call, path, 0, {"session_handle": ("s", self.session)})
            elif member == "BindShortcuts":
                session, shortcuts, _parent, options = call.body
                self.bound.append((session, shortcuts))
                path = f"{PORTAL_PATH}/request/{sender}/{options['handle_token'][1]}"
                bound = [(sid, {"trigger_description": ("s", "Ctrl+Alt+Space")}) for sid, _ in shortcuts]
                self._respond(call, path, self.bind_response, {"shortcuts": ("a(sa{sv})", bound)})
            elif member == "Close":
                self.closed.append(fields[HeaderFields.path])
                self._send(new_method_return(call))
            else:
                self._send(new_error(call, "org.freedesktop.DBus.Error.UnknownMethod"))

    def emit(self, member: str, session: str | None = None, shortcut: str = "dictate") -> None:
        from jeepney import DBusAddress, new_signal

        address = DBusAddress(PORTAL_PATH, interface="org.freedesktop.portal.GlobalShortcuts")
        signal = new_signal(address, member, "osta{sv}", (session or self.session, shortcut, 12345, {}))
        self._send(signal)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.connection.close()


@pytest.fixture
def fake_portal(session_bus):
    portal = FakePortal(session_bus)
    yield portal
    portal.close()


def test_portal_is_unavailable_without_the_interface(session_bus) -> None:
    from dictation.app.hotkeys.portal import PortalHotkey

    usable, why = PortalHotkey.available()
    assert not usable
    assert "GlobalShortcuts" in why


def test_portal_binds_the_key_and_reports_activated_and_deactivated(fake_portal) -> None:
    from dictation.app.hotkeys.portal import PortalHotkey

    usable, why = PortalHotkey.available()
    assert usable, why
    assert "version 1" in why
    backend = PortalHotkey(parse_key("ctrl+alt+space"))
    recorder = Recorder()
    backend.start(recorder.press, recorder.release)
    try:
        [(session, shortcuts)] = fake_portal.bound
        assert session == fake_portal.session
        [(shortcut_id, properties)] = shortcuts
        assert shortcut_id == "dictate"
        assert properties["preferred_trigger"] == ("s", "CTRL+ALT+space")
        assert backend.trigger == "Ctrl+Alt+Space"
        fake_portal.emit("Activated", session="/org/freedesktop/portal/desktop/session/other/x")  # not ours
        fake_portal.emit("Activated", shortcut="something-else")  # not ours
        fake_portal.emit("Activated")
        fake_portal.emit("Deactivated")
        assert recorder.wait(2) == [PRESS, RELEASE]
        time.sleep(0.1)
        assert recorder.events == [PRESS, RELEASE]
    finally:
        backend.stop()
    deadline = time.monotonic() + 5
    while not fake_portal.closed and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_portal.closed == [fake_portal.session]  # the session (and its shortcut) is closed


def test_portal_refusal_is_a_clear_error(session_bus) -> None:
    from dictation.app.hotkeys.portal import PortalHotkey

    portal = FakePortal(session_bus, bind_response=1)  # the user cancelled the desktop's dialog
    try:
        with pytest.raises(HotkeyError, match="refused the shortcut"):
            PortalHotkey(parse_key("F9")).start(lambda: None, lambda: None)
    finally:
        portal.close()


def test_chooser_takes_the_portal_on_wayland_when_it_offers_shortcuts(fake_portal, monkeypatch) -> None:
    monkeypatch.setenv("XDG_SESSION_TYPE", "wayland")
    assert choose_backend(parse_key("F9")).name == "portal"
