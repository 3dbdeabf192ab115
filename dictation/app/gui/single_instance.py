"""One app per data folder: a second launch shows the running app's window and exits.

Two windows on one profile would overwrite each other's settings (and interleave their
history). The first app holds an exclusive lock on `<data root>/app.lock` for as long as
it runs (the system drops it when the process ends, even in a crash) and listens on a
local socket; a later launch that cannot take the lock connects to that socket, which
asks the first app to show its window, and exits.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from dictation.app import storage

log = logging.getLogger(__name__)

LOCK_FILE = "app.lock"
CONNECT_SECONDS = 5.0  # the first app may still be starting: it listens once it holds the lock


def server_name(root: Path) -> str:
    """The local socket's name for a data folder (per user; short enough for a socket path)."""
    digest = hashlib.sha256(str(Path(root).resolve()).encode("utf-8")).hexdigest()[:16]
    return f"dictation-{os.getuid()}-{digest}"


class SingleInstance(QObject):
    """`acquire()` once at start. Signals: activation_requested(): another launch asked
    this app to show its window."""

    activation_requested = Signal()

    def __init__(self, root: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.root = Path(root) if root is not None else None  # None: the data root
        self.name = ""
        self._lock_fd: int | None = None
        self._server: QLocalServer | None = None

    def acquire(self) -> bool:
        """True when this is the only app on the data folder (it now answers later
        launches); False when another runs (it was asked to show its window). When the
        data folder cannot be used the app runs unguarded (and says why when it opens
        a profile)."""
        try:
            if self.root is None:
                self.root = storage.data_root()
            self.name = server_name(self.root)
            fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, storage.PRIVATE_FILE_MODE)
        except OSError as exc:
            log.warning("no single-instance guard: %s", exc)
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            if not self._ask_running_app_to_show():
                log.warning("another Dictation holds %s but does not answer", self.root / LOCK_FILE)
                print("Dictation is already running, but its window could not be shown.", file=sys.stderr)
            return False
        self._lock_fd = fd
        # We hold the lock, so a socket under our name is a crashed app's: remove it.
        QLocalServer.removeServer(self.name)
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.name):
            log.warning("cannot listen for later launches: %s", server.errorString())
        server.newConnection.connect(self._connected)
        self._server = server
        return True

    def _ask_running_app_to_show(self) -> bool:
        deadline = time.monotonic() + CONNECT_SECONDS
        while True:
            socket = QLocalSocket()
            socket.connectToServer(self.name)
            if socket.waitForConnected(500):
                socket.write(b"show\n")
                socket.waitForBytesWritten(1000)
                socket.disconnectFromServer()
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def _connected(self) -> None:
        server = self._server
        while server is not None and server.hasPendingConnections():
            connection = server.nextPendingConnection()
            connection.disconnected.connect(connection.deleteLater)
            connection.disconnectFromServer()
            self.activation_requested.emit()

    def release(self) -> None:
        """Stop answering and drop the lock (the app ends)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the lock
            self._lock_fd = None
