"""The X11 CLIPBOARD selection, spoken directly (python-xlib, no toolkit).

`X11Clipboard.read()` copies every format the current owner offers (text, HTML, images:
whatever its TARGETS lists, INCR transfers included), so it can be given back unchanged
after a paste. `own(contents)` makes this process the owner, served by a thread that
stays alive with the process (X selections are served by their owner on request, so the
text must stay available until the other application has asked for it);
`wait_for_paste` says when a data request arrived after the paste key was sent.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from dataclasses import dataclass
from typing import Any

from Xlib import X, Xatom
from Xlib.protocol import event as xevent
from Xlib.protocol import request as xrequest

from dictation.app.hotkeys.xutil import open_display

log = logging.getLogger(__name__)

# Targets that describe the selection rather than hold its data: never copied.
_META_TARGETS = {"TARGETS", "MULTIPLE", "TIMESTAMP", "SAVE_TARGETS", "DELETE", "INSERT_SELECTION", "INSERT_PROPERTY"}
MAX_SAVED_BYTES = 64 * 1024 * 1024  # a clipboard larger than this is not restored
INCR_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Item:
    """One format of a clipboard: the property type, its format (8/16/32) and the data."""

    type: str
    format: int
    data: bytes | tuple[int, ...]


Contents = dict[str, Item]  # target name -> data


def text_contents(text: str) -> Contents:
    """The formats a pasted text is offered in (Latin-1 STRING only when it fits)."""
    utf8 = text.encode("utf-8")
    contents = {
        "UTF8_STRING": Item("UTF8_STRING", 8, utf8),
        "text/plain;charset=utf-8": Item("text/plain;charset=utf-8", 8, utf8),
        "TEXT": Item("UTF8_STRING", 8, utf8),
    }
    try:
        latin1 = text.encode("latin-1")
    except UnicodeEncodeError:
        return contents
    contents["STRING"] = Item("STRING", 8, latin1)
    contents["text/plain"] = Item("text/plain", 8, latin1)
    return contents


def client_base(window_id: int, display: Any) -> int:
    """The part of a resource id that names its X client (same for all its windows)."""
    return window_id & ~display.display.info.resource_id_mask


class _Events:
    """Waiting for an event on one connection, with a deadline."""

    def __init__(self, display: Any) -> None:
        self.display = display

    def wait(self, predicate: Any, deadline: float, on_other: Any = None) -> Any:
        while True:
            while self.display.pending_events():
                event = self.display.next_event()
                if predicate(event):
                    return event
                if on_other is not None:
                    on_other(event)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            select.select([self.display.fileno()], [], [], remaining)


class X11Clipboard:
    """Read, own and give back the CLIPBOARD selection."""

    def __init__(self, selection: str = "CLIPBOARD") -> None:
        self._reader = open_display()
        self._reader.set_error_handler(lambda error, request: log.debug("X error (reader): %s", error))
        self._reader_window = self._reader.screen().root.create_window(
            0, 0, 1, 1, 0, X.CopyFromParent, event_mask=X.PropertyChangeMask
        )
        self._selection_name = selection
        self._selection = self._reader.intern_atom(selection)
        self._property = self._reader.intern_atom("DICTATION_CLIPBOARD")
        self._incr = self._reader.intern_atom("INCR")
        self._read_lock = threading.Lock()
        self._owner = _Owner(selection)

    # -- reading

    def _convert(self, target: int, deadline: float) -> Item | None:
        display, window = self._reader, self._reader_window
        window.delete_property(self._property)
        window.convert_selection(self._selection, target, self._property, X.CurrentTime)
        display.flush()
        events = _Events(display)
        notify = events.wait(
            lambda e: e.type == X.SelectionNotify and e.requestor.id == window.id and e.target == target, deadline
        )
        if notify is None or notify.property == X.NONE:
            return None
        reply = window.get_full_property(self._property, X.AnyPropertyType)
        if reply is None:
            return None
        type_name = display.get_atom_name(reply.property_type)
        if reply.property_type != self._incr:
            window.delete_property(self._property)
            display.flush()
            return Item(type_name, reply.format, _as_data(reply))
        # INCR: deleting the property asks for each next chunk; an empty chunk ends it.
        window.delete_property(self._property)
        display.flush()
        chunks: list[Any] = []
        size, item_type, item_format = 0, type_name, 8
        while True:
            new_value = events.wait(
                lambda e: e.type == X.PropertyNotify and e.atom == self._property and e.state == X.PropertyNewValue,
                deadline,
            )
            if new_value is None:
                return None
            part = window.get_full_property(self._property, X.AnyPropertyType)
            window.delete_property(self._property)
            display.flush()
            if part is None or not len(part.value):
                break
            item_type, item_format = display.get_atom_name(part.property_type), part.format
            chunks.append(_as_data(part))
            size += len(part.value) * part.format // 8
            if size > MAX_SAVED_BYTES:
                return None
        if item_format == 8:
            return Item(item_type, 8, b"".join(bytes(c) for c in chunks))
        return Item(item_type, item_format, tuple(v for c in chunks for v in c))

    def read(self, timeout: float = 2.0) -> Contents | None:
        """Every format the clipboard holds now; None when nobody owns it."""
        with self._read_lock:
            if _owner_id(self._reader, self._selection) == X.NONE:
                return None
            deadline = time.monotonic() + timeout
            targets_atom = self._reader.intern_atom("TARGETS")
            listed = self._convert(targets_atom, deadline)
            if listed is None:
                return {}
            contents: Contents = {}
            size = 0
            for atom in listed.data if listed.format == 32 else ():
                name = self._reader.get_atom_name(atom)
                if name in _META_TARGETS or name in contents:
                    continue
                item = self._convert(atom, deadline)
                if item is None:
                    continue
                size += len(item.data) * item.format // 8
                if size > MAX_SAVED_BYTES:
                    log.warning("the clipboard holds more than %d MB: not saved", MAX_SAVED_BYTES // 2**20)
                    return {}
                contents[name] = item
            return contents

    def read_text(self, timeout: float = 2.0) -> str | None:
        """The clipboard's text (UTF8_STRING), or None."""
        with self._read_lock:
            if _owner_id(self._reader, self._selection) == X.NONE:
                return None
            item = self._convert(self._reader.intern_atom("UTF8_STRING"), time.monotonic() + timeout)
        return None if item is None else bytes(item.data).decode("utf-8", "replace")

    # -- owning

    def own(self, contents: Contents | None) -> int:
        """Offer `contents` as the clipboard (None: give it up); returns a generation
        number for `wait_for_paste`."""
        return self._owner.own(contents)

    def set_text(self, text: str) -> int:
        return self.own(text_contents(text))

    def wait_for_paste(self, generation: int, client: int | None, timeout: float) -> bool:
        """True once a data request for that generation came (from `client`'s windows
        when given, so a clipboard manager's copy does not count)."""
        return self._owner.wait_for_paste(generation, client, timeout)

    def still_offering(self, generation: int) -> bool:
        """True while that generation is still what this process offers."""
        return self._owner.still_offering(generation)

    def close(self) -> None:
        self._owner.close()
        self._reader.close()


def _owner_id(display: Any, selection: int) -> int:
    """The window id owning `selection` (X.NONE when nobody does)."""
    owner = display.get_selection_owner(selection)
    return owner if isinstance(owner, int) else int(owner.id)


def _as_data(reply: Any) -> bytes | tuple[int, ...]:
    return bytes(reply.value) if reply.format == 8 else tuple(int(v) for v in reply.value)


class _Owner:
    """The thread that owns the selection and answers other clients' requests."""

    def __init__(self, selection: str) -> None:
        self.display = display = open_display()
        display.set_error_handler(lambda error, request: log.debug("X error (owner): %s", error))
        self.window = display.screen().root.create_window(
            0, 0, 1, 1, 0, X.CopyFromParent, event_mask=X.PropertyChangeMask
        )
        self.selection = display.intern_atom(selection)
        self.atoms = {n: display.intern_atom(n) for n in ("TARGETS", "TIMESTAMP", "INCR", "DICTATION_TIME")}
        self._condition = threading.Condition()
        self._commands: list[tuple[Contents | None, int]] = []
        self._generation = 0
        self._contents: Contents | None = None
        self._current = 0  # generation now offered
        self._timestamp = X.CurrentTime
        self._served: dict[int, list[int]] = {}  # generation -> client bases that fetched data
        self._transfers: dict[tuple[int, int], tuple[Any, Item, int]] = {}
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._run, name="x11-clipboard", daemon=True)
        self._thread.start()

    def own(self, contents: Contents | None) -> int:
        with self._condition:
            self._generation += 1
            generation = self._generation
            self._commands.append((contents, generation))
        os.write(self._wake_write, b"o")
        with self._condition:  # owned (or failed) before returning, so a paste finds it
            self._condition.wait_for(lambda: self._current >= generation or not self._thread.is_alive(), timeout=5)
        return generation

    def wait_for_paste(self, generation: int, client: int | None, timeout: float) -> bool:
        def pasted() -> bool:
            clients = self._served.get(generation, [])
            return bool(clients) if client is None else client in clients

        with self._condition:
            return self._condition.wait_for(pasted, timeout=timeout)

    def still_offering(self, generation: int) -> bool:
        with self._condition:
            return self._current == generation and self._contents is not None

    def close(self) -> None:
        if self._thread.is_alive():
            os.write(self._wake_write, b"q")
            self._thread.join(timeout=5)
        self.display.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    # -- the thread

    def _run(self) -> None:
        try:
            while True:
                ready, _, _ = select.select([self.display.fileno(), self._wake_read], [], [])
                if self._wake_read in ready:
                    if b"q" in os.read(self._wake_read, 64):
                        return
                    with self._condition:
                        commands, self._commands = self._commands, []
                    for contents, generation in commands:
                        self._take_ownership(contents, generation)
                while self.display.pending_events():
                    self._handle(self.display.next_event())
        except Exception:
            log.exception("the clipboard owner stopped")
        finally:
            with self._condition:
                self._condition.notify_all()

    def _server_time(self) -> int:
        """A current server timestamp (ICCCM: never own a selection at CurrentTime)."""
        self.window.change_property(self.atoms["DICTATION_TIME"], Xatom.STRING, 8, b"", X.PropModeAppend)
        self.display.flush()
        stamp = _Events(self.display).wait(
            lambda e: e.type == X.PropertyNotify and e.window.id == self.window.id,
            time.monotonic() + 2,
            on_other=self._handle,
        )
        return int(stamp.time) if stamp is not None else X.CurrentTime

    def _take_ownership(self, contents: Contents | None, generation: int) -> None:
        timestamp = self._server_time()
        if contents is None:
            if _owner_id(self.display, self.selection) == self.window.id:
                xrequest.SetSelectionOwner(
                    display=self.display.display, window=X.NONE, selection=self.selection, time=timestamp
                )
        else:
            self.window.set_selection_owner(self.selection, timestamp)
        self.display.sync()  # processed by the server before any other client asks
        with self._condition:
            self._contents, self._timestamp, self._current = contents, timestamp, generation
            self._condition.notify_all()
        if contents is not None and _owner_id(self.display, self.selection) != self.window.id:
            log.warning("could not take the clipboard")
            with self._condition:
                self._contents = None

    def _handle(self, event: Any) -> None:
        if event.type == X.SelectionRequest:
            self._answer(event)
        elif event.type == X.SelectionClear and event.atom == self.selection:
            with self._condition:
                self._contents = None  # another application copied something
        elif event.type == X.PropertyNotify and event.state == X.PropertyDelete:
            self._continue_transfer(event.window.id, event.atom)

    def _answer(self, request: Any) -> None:
        prop = request.property if request.property != X.NONE else request.target
        target = self.display.get_atom_name(request.target)
        contents = self._contents
        requestor = request.requestor
        if contents is None or request.selection != self.selection:
            prop = X.NONE
        elif target == "TARGETS":
            atoms = [self.atoms["TARGETS"], self.atoms["TIMESTAMP"], *(self.display.intern_atom(t) for t in contents)]
            requestor.change_property(prop, Xatom.ATOM, 32, atoms)
        elif target == "TIMESTAMP":
            requestor.change_property(prop, Xatom.INTEGER, 32, [self._timestamp])
        elif target in contents:
            item = contents[target]
            type_atom = self.display.intern_atom(item.type)
            if item.format == 8 and len(item.data) > INCR_CHUNK:
                requestor.change_attributes(event_mask=X.PropertyChangeMask)
                requestor.change_property(prop, self.atoms["INCR"], 32, [len(item.data)])
                self._transfers[(requestor.id, prop)] = (requestor, item, 0)
            else:
                requestor.change_property(prop, type_atom, item.format, item.data)
            with self._condition:
                self._served.setdefault(self._current, []).append(client_base(requestor.id, self.display))
                self._condition.notify_all()
        else:
            prop = X.NONE
        notify = xevent.SelectionNotify(
            time=request.time, requestor=requestor, selection=request.selection, target=request.target, property=prop
        )
        requestor.send_event(notify)
        self.display.flush()

    def _continue_transfer(self, window_id: int, prop: int) -> None:
        transfer = self._transfers.get((window_id, prop))
        if transfer is None:
            return
        requestor, item, offset = transfer
        chunk = bytes(item.data[offset : offset + INCR_CHUNK])
        requestor.change_property(prop, self.display.intern_atom(item.type), 8, chunk)
        if chunk:
            self._transfers[(window_id, prop)] = (requestor, item, offset + len(chunk))
        else:
            del self._transfers[(window_id, prop)]
            requestor.change_attributes(event_mask=X.NoEventMask)
        self.display.flush()
