"""Wayland backend: the xdg-desktop-portal GlobalShortcuts interface, over D-Bus (jeepney).

The portal asks the desktop for a shortcut (the user may confirm or change the key in
the desktop's own dialog), then sends Activated when it is pressed and Deactivated when
it is released. Offered by KDE Plasma (5.27+), GNOME (48+) and Hyprland's portal,
among others; where the portal lacks the interface, `available()` says so.
"""

from __future__ import annotations

import logging
import os
import secrets
import select
import threading
from typing import Any

from dictation.app.hotkeys.base import Callback, HotkeyBackend, HotkeyError
from dictation.app.hotkeys.keys import KeyCombo

log = logging.getLogger(__name__)

PORTAL_BUS = "org.freedesktop.portal.Desktop"
PORTAL_PATH = "/org/freedesktop/portal/desktop"
SHORTCUTS = "org.freedesktop.portal.GlobalShortcuts"
REQUEST = "org.freedesktop.portal.Request"
SHORTCUT_ID = "dictate"
CALL_TIMEOUT_S = 10.0
# BindShortcuts may wait on the desktop's confirmation dialog: give the user time.
RESPONSE_TIMEOUT_S = 120.0


def _portal(interface: str = SHORTCUTS) -> Any:
    from jeepney import DBusAddress

    return DBusAddress(PORTAL_PATH, bus_name=PORTAL_BUS, interface=interface)


def _connect() -> Any:
    from jeepney.io.blocking import open_dbus_connection

    return open_dbus_connection(bus="SESSION")


def portal_version(connection: Any) -> int:
    """The GlobalShortcuts interface's version; raises when the portal lacks it."""
    from jeepney import Properties
    from jeepney.wrappers import unwrap_msg

    reply = connection.send_and_get_reply(Properties(_portal()).get("version"), timeout=CALL_TIMEOUT_S)
    _, version = unwrap_msg(reply)[0]
    return int(version)


class PortalHotkey(HotkeyBackend):
    name = "portal"

    def __init__(self, combo: KeyCombo) -> None:
        super().__init__(combo)
        self._connection: Any = None
        self._session = ""
        self._thread: threading.Thread | None = None
        self._wake_read, self._wake_write = -1, -1
        self.trigger = ""  # the key the desktop says it bound (its own wording)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            connection = _connect()
        except ImportError as exc:
            return False, f"jeepney is not installed ({exc})"
        except Exception as exc:  # no session bus (KeyError, OSError, ...)
            return False, f"no D-Bus session bus ({type(exc).__name__}: {exc})"
        try:
            version = portal_version(connection)
        except Exception as exc:
            return False, f"the desktop portal offers no GlobalShortcuts interface ({exc})"
        finally:
            connection.close()
        return True, f"xdg-desktop-portal GlobalShortcuts version {version}"

    def _request(self, method: str, signature: str, body: tuple) -> dict:
        """Call a portal method that answers through a Request object's Response signal."""
        from jeepney import MatchRule, message_bus, new_method_call
        from jeepney.io.blocking import Proxy
        from jeepney.wrappers import unwrap_msg

        connection = self._connection
        token = f"dictation_{secrets.token_hex(6)}"
        sender = connection.unique_name[1:].replace(".", "_")
        path = f"{PORTAL_PATH}/request/{sender}/{token}"
        rule = MatchRule(type="signal", interface=REQUEST, member="Response", path=path)
        Proxy(message_bus, connection).AddMatch(rule)
        options = body[-1]
        options["handle_token"] = ("s", token)
        with connection.filter(rule) as responses:
            reply = connection.send_and_get_reply(
                new_method_call(_portal(), method, signature, body), timeout=CALL_TIMEOUT_S
            )
            unwrap_msg(reply)  # raises DBusErrorResponse for an error reply
            try:
                response = connection.recv_until_filtered(responses, timeout=RESPONSE_TIMEOUT_S)
            except TimeoutError as exc:
                raise HotkeyError(f"the desktop did not answer {method} within {RESPONSE_TIMEOUT_S:g} s") from exc
        code, results = response.body
        if code != 0:
            raise HotkeyError(f"the desktop refused the shortcut ({method}: {'cancelled' if code == 1 else 'failed'})")
        return dict(results)

    def start(self, on_press: Callback, on_release: Callback) -> None:
        from jeepney import MatchRule, message_bus
        from jeepney.io.blocking import Proxy
        from jeepney.wrappers import DBusErrorResponse

        if self._connection is not None:
            return
        try:
            self._connection = _connect()
            created = self._request(
                "CreateSession", "a{sv}", ({"session_handle_token": ("s", f"dictation_{secrets.token_hex(6)}")},)
            )
            self._session = str(created["session_handle"][1])
            shortcut = {
                "description": ("s", "Dictate"),
                "preferred_trigger": ("s", self.combo.xdg_trigger()),
            }
            bound = self._request(
                "BindShortcuts", "oa(sa{sv})sa{sv}", (self._session, [(SHORTCUT_ID, shortcut)], "", {})
            )
            for shortcut_id, properties in bound.get("shortcuts", ("", []))[1]:
                if shortcut_id == SHORTCUT_ID:
                    self.trigger = str(properties.get("trigger_description", ("s", ""))[1])
            rule = MatchRule(type="signal", interface=SHORTCUTS, path=PORTAL_PATH)
            Proxy(message_bus, self._connection).AddMatch(rule)
        except (DBusErrorResponse, OSError, KeyError) as exc:
            self.stop()
            raise HotkeyError(f"the GlobalShortcuts portal failed: {exc}") from exc
        except HotkeyError:
            self.stop()
            raise
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(
            target=self._run, args=(rule, on_press, on_release), name="portal-hotkey", daemon=True
        )
        self._thread.start()
        log.info("GlobalShortcuts portal: %s bound (desktop says %r)", self.combo, self.trigger)

    def _run(self, rule: Any, on_press: Callback, on_release: Callback) -> None:
        connection = self._connection
        member_field = _member_field()
        with connection.filter(rule, bufsize=256) as signals:
            while True:
                try:  # everything already read, or readable now, into the filter's queue
                    while True:
                        connection.recv_messages(timeout=0)
                except TimeoutError:
                    pass
                except Exception:  # the bus went away: no more key events will come
                    log.exception("the GlobalShortcuts listener stopped")
                    return
                while signals:
                    message = signals.popleft()
                    if tuple(message.body[:2]) != (self._session, SHORTCUT_ID):
                        continue
                    member = message.header.fields.get(member_field)
                    callback = {"Activated": on_press, "Deactivated": on_release}.get(member)
                    if callback is not None:
                        try:
                            callback()
                        except Exception:  # a failing listener must not end the listening
                            log.exception("hotkey callback failed")
                ready, _, _ = select.select([connection.sock, self._wake_read], [], [])
                if self._wake_read in ready:
                    return

    def stop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._thread is not None:
            os.write(self._wake_write, b"x")
            self._thread.join(timeout=5)
            self._thread = None
            os.close(self._wake_read)
            os.close(self._wake_write)
        if self._session:
            from jeepney import DBusAddress, new_method_call

            try:  # closing the session unbinds the shortcut
                close = new_method_call(
                    DBusAddress(self._session, bus_name=PORTAL_BUS, interface="org.freedesktop.portal.Session"),
                    "Close",
                )
                connection.send_and_get_reply(close, timeout=2)
            except Exception as exc:
                log.debug("closing the portal session: %s", exc)
            self._session = ""
        connection.close()


def _member_field() -> Any:
    from jeepney.low_level import HeaderFields

    return HeaderFields.member
