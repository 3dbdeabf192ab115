"""Application entry point: `run_app` is what `dictation` (no arguments) calls."""

from __future__ import annotations

import logging
import sys

from PySide6.QtWidgets import QApplication

from dictation.gui.main_window import MainWindow


def run_app(debug: bool = False) -> int:
    """Start the GUI and return its exit status."""
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Dictation")
    app.setOrganizationName("dictation")
    window = MainWindow()
    window.show()
    return int(app.exec())
