"""Application entry point: `run_app` is what `dictation` (no arguments) calls."""

from __future__ import annotations

import logging
import sys

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from dictation.app.desktop import APP_ID, icon_file
from dictation.app.gui.main_window import MainWindow
from dictation.app.gui.single_instance import SingleInstance


def run_app(debug: bool = False) -> int:
    """Start the GUI and return its exit status."""
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)
    existing = QApplication.instance()
    # A QApplication (not a bare QCoreApplication) is needed for windows; one per process.
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("Dictation")
    app.setOrganizationName("dictation")
    # Lets Wayland docks match the window to the installed .desktop entry and its icon.
    app.setDesktopFileName(APP_ID)
    icon = icon_file(256)
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    instance = SingleInstance()
    if not instance.acquire():  # another app runs on this data folder: it shows its window
        logging.getLogger(__name__).info("Dictation is already running; showed its window")
        return 0
    window = MainWindow()
    instance.activation_requested.connect(window.show_window)
    # With a tray the app lives on after its window closes; Quit (tray or menu) ends it.
    app.setQuitOnLastWindowClosed(window.tray is None)
    if window.starts_hidden():
        logging.getLogger(__name__).info("started hidden in the tray")
    else:
        window.show()
    return int(app.exec())
