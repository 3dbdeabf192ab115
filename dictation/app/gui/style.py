"""Shared look: a plain, readable style sheet and a few helpers."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget

STYLE_SHEET = """
QWidget { font-size: 10.5pt; }
QLabel#title { font-size: 17pt; font-weight: 600; }
QLabel#subtitle { color: #55606b; }
QLabel#prompt { font-size: 19pt; padding: 18px; background: #f5f7fa;
                border: 1px solid #dde2e8; border-radius: 6px; }
QLabel#progress { color: #55606b; font-weight: 600; }
QLabel#bad { color: #b3261e; }
QLabel#good { color: #1e7b3c; }
QLabel#recording { color: #b3261e; font-weight: 600; }
QLabel#idle { color: #55606b; }
QLabel#notice { background: #fff4d6; border: 1px solid #e8cf8a; border-radius: 4px; padding: 8px; }
QListWidget#nav { border: none; background: #f0f2f5; font-size: 11.5pt; padding-top: 8px; }
QListWidget#nav::item { padding: 10px 16px; }
QListWidget#nav::item:selected { background: #dbe7f6; color: #123; }
QPushButton#primary { background: #2f7dd1; color: white; border: none; padding: 7px 16px;
                      border-radius: 4px; font-weight: 600; }
QPushButton#primary:disabled { background: #9bbde6; }
QPushButton#talk { font-size: 12pt; padding: 12px 20px; }
QPushButton#talk:pressed, QPushButton#talk[recording="true"] { background: #c8443c;
                      color: white; }
"""


def label(text: str, name: str = "", parent: QWidget | None = None, wrap: bool = True) -> QLabel:
    """A QLabel with an object name (for the style sheet) and word wrap."""
    widget = QLabel(text, parent)
    if name:
        widget.setObjectName(name)
    widget.setWordWrap(wrap)
    return widget


def set_state(widget: QLabel, text: str, name: str) -> None:
    """Change a status label's text and its styled state (good/bad/idle/recording)."""
    widget.setText(text)
    if widget.objectName() != name:
        widget.setObjectName(name)
        widget.style().unpolish(widget)
        widget.style().polish(widget)
