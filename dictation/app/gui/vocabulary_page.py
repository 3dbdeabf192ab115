"""Vocabulary page: the open profile's own words (add, remove, import and export a text file).

Each entry is a word or phrase the recogniser should know, with an optional "sounds like"
spelling and an optional text written instead (see `dictation.app.vocabulary.entries`
for the file format). Every change is saved at once and announced with `changed`, so
the next dictation uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dictation.app.gui.style import label, set_state
from dictation.app.vocabulary import (
    VocabularyEntry,
    VocabularyError,
    VocabularyStore,
    format_text,
    make_entry,
    parse_text,
)

COLUMNS = ("Word or phrase", "Sounds like", "Written as")
FILE_FILTER = "Text files (*.txt);;All files (*)"


class VocabularyPage(QWidget):
    """Signals: changed(list of VocabularyEntry), after every saved change."""

    changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store: VocabularyStore | None = None
        self.title = label("Your words", "title")
        self.intro = label(
            "Names, places, product names and jargon the recogniser should know. "
            "\u201cSounds like\u201d is how a word is said, in ordinary words; "
            "\u201cWritten as\u201d is text written instead (for example \u201cem dash\u201d \u2192 \u2014).",
            "subtitle",
        )
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.phrase_edit = QLineEdit()
        self.phrase_edit.setPlaceholderText("Word or phrase")
        self.sounds_edit = QLineEdit()
        self.sounds_edit.setPlaceholderText("Sounds like (optional)")
        self.written_edit = QLineEdit()
        self.written_edit.setPlaceholderText("Written as (optional)")
        self.add_button = QPushButton("Add")
        self.add_button.setObjectName("primary")
        self.remove_button = QPushButton("Remove selected")
        self.import_button = QPushButton("Import\u2026")
        self.export_button = QPushButton("Export\u2026")
        self.status = label("", "idle")

        add_row = QHBoxLayout()
        for widget in (self.phrase_edit, self.sounds_edit, self.written_edit):
            add_row.addWidget(widget, 1)
        add_row.addWidget(self.add_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(28, 24, 28, 24)
        layout.addWidget(self.title)
        layout.addWidget(self.intro)
        layout.addLayout(add_row)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        self.add_button.clicked.connect(self.add_from_fields)
        self.phrase_edit.returnPressed.connect(self.add_from_fields)
        self.remove_button.clicked.connect(self.remove_selected)
        self.import_button.clicked.connect(self._ask_import)
        self.export_button.clicked.connect(self._ask_export)
        self.set_profile(None)

    # -- the profile ---------------------------------------------------------------------

    def set_profile(self, profile: Any) -> None:
        """Show this profile's entries (None: nothing to edit)."""
        self.store = VocabularyStore(profile) if profile is not None else None
        for button in (self.add_button, self.remove_button, self.import_button, self.export_button):
            button.setEnabled(self.store is not None)
        set_state(self.status, "", "idle")
        self._show(self.store.entries() if self.store is not None else [])

    def entries(self) -> list[VocabularyEntry]:
        return self.store.entries() if self.store is not None else []

    def _show(self, entries: list[VocabularyEntry]) -> None:
        self.table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            for col, text in enumerate((entry.phrase, entry.sounds_like, entry.replacement)):
                self.table.setItem(row, col, QTableWidgetItem(text))

    def _save(self, action: Any, done: str) -> bool:
        """Run a store change; show the result, or the reason it was refused."""
        if self.store is None:
            return False
        try:
            action()
        except (VocabularyError, OSError, ValueError) as exc:
            set_state(self.status, str(exc), "bad")
            return False
        entries = self.store.entries()
        self._show(entries)
        set_state(self.status, done, "good")
        self.changed.emit(entries)
        return True

    # -- actions -------------------------------------------------------------------------

    def add_from_fields(self) -> bool:
        phrase = self.phrase_edit.text()
        try:
            entry = make_entry(phrase, self.sounds_edit.text(), self.written_edit.text().replace("\\n", "\n"))
        except VocabularyError as exc:
            set_state(self.status, str(exc), "bad")
            return False
        if not self._save(
            lambda: self.store.add([entry]) if self.store else None, f"Added \u201c{entry.phrase}\u201d."
        ):
            return False
        for edit in (self.phrase_edit, self.sounds_edit, self.written_edit):
            edit.clear()
        self.phrase_edit.setFocus()
        return True

    def remove_selected(self) -> bool:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        phrases = [item.text() for row in rows if (item := self.table.item(row, 0)) is not None]
        if not phrases:
            set_state(self.status, "Select the entries to remove first.", "idle")
            return False
        removed = f"Removed {len(phrases)} entr{'y' if len(phrases) == 1 else 'ies'}."
        return self._save(lambda: self.store.remove(phrases) if self.store else None, removed)

    def import_file(self, path: Path) -> bool:
        """Add the entries of a text file (one per line: phrase | sounds like | written as)."""
        try:
            entries = parse_text(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, VocabularyError) as exc:
            set_state(self.status, f"{Path(path).name} could not be imported: {exc}", "bad")
            return False
        done = f"Imported {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} from {Path(path).name}."
        return self._save(lambda: self.store.add(entries) if self.store else None, done)

    def export_file(self, path: Path) -> bool:
        from dictation.app import storage

        try:
            storage.atomic_write_text(Path(path), format_text(self.entries()), make_parents=False)
        except OSError as exc:
            set_state(self.status, f"{Path(path).name} could not be written: {exc}", "bad")
            return False
        set_state(self.status, f"Exported {len(self.entries())} entries to {Path(path).name}.", "good")
        return True

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import vocabulary", str(Path.home()), FILE_FILTER)
        if path:
            self.import_file(Path(path))

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export vocabulary", str(Path.home() / "vocabulary.txt"), FILE_FILTER
        )
        if path:
            self.export_file(Path(path))
