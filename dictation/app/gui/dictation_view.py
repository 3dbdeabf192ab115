"""Dictation view: push-to-talk, transcript area, copy, history and corrections."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QGuiApplication, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from dictation.app.gui.dictation_bars import NoticeBar, PendingBar
from dictation.app.gui.level_meter import LevelMeter
from dictation.app.gui.style import label, set_state

if TYPE_CHECKING:
    from dictation.app.gui.dictation_controller import DictationController


TALK_TEXT = "Hold to talk"
TALK_TEXT_RECORDING = "Listening\u2026 release to stop"
LAST_DICTATION_PLACEHOLDER = "Appears here; fix any mistakes"


class TalkButton(QPushButton):
    """The hold-to-talk button, as wide as its longer text in whatever font the style
    gives it, so that starting a take does not widen the window."""

    def _widened(self, hint: QSize) -> QSize:
        metrics = self.fontMetrics()
        extra = metrics.horizontalAdvance(TALK_TEXT_RECORDING) - metrics.horizontalAdvance(self.text())
        return QSize(hint.width() + max(0, extra), hint.height())

    def sizeHint(self) -> QSize:  # QPushButton's minimumSizeHint is its sizeHint
        return self._widened(super().sizeHint())


class DictationView(QWidget):
    """Shows recording state and transcripts; a `DictationController` does the work
    (`attach`).

    Signals: talk_pressed(), talk_released(), correction_submitted(str), partial_shown(str),
    auto_copy_toggled(bool).
    """

    talk_pressed = Signal()
    talk_released = Signal()
    correction_submitted = Signal(str)
    auto_copy_toggled = Signal(bool)
    partial_shown = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rec_indicator = label("Ready", "idle", wrap=False)
        self.meter = LevelMeter()
        self.status = label("", "idle")
        # A long status (a live preview, an error) wraps instead of widening the window.
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.notice_bar = NoticeBar()
        self.notices, self.dismiss_notices_button = self.notice_bar.text, self.notice_bar.dismiss_button
        self.pending_bar = PendingBar()
        self.pending_label = self.pending_bar.text
        self.retry_button, self.discard_button = self.pending_bar.retry_button, self.pending_bar.discard_button
        self._last_insert: QTextCursor | None = None  # selects the last dictation's text
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText(
            "Hold Space (when you are not typing here) or hold the button below, speak, then "
            "release. Your words appear here; you can edit them."
        )
        self.talk_button = TalkButton(TALK_TEXT)
        self.talk_button.setObjectName("talk")
        self.talk_button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.copy_button = QPushButton("Copy")
        self.clear_button = QPushButton("Clear")
        self.auto_copy = QCheckBox("Copy to clipboard automatically")

        self.correction_edit = QLineEdit()
        self.correction_edit.setPlaceholderText(LAST_DICTATION_PLACEHOLDER)
        # Wide enough for its placeholder whatever the window's width.
        placeholder_width = self.correction_edit.fontMetrics().horizontalAdvance(LAST_DICTATION_PLACEHOLDER)
        self.correction_edit.setMinimumWidth(placeholder_width + 24)
        self.correct_button = QPushButton("Mark as correct")
        self.correct_button.setToolTip(
            "Saves this recording with the corrected text; it is used the next time you adapt."
        )
        self.correction_edit.setEnabled(False)
        self.correct_button.setEnabled(False)

        self.history = QListWidget()
        self.history.setWordWrap(True)
        self.history.setAlternatingRowColors(True)
        self.history.setSpacing(2)
        self.history.setToolTip("Double-click an entry to add it to the text again.")

        top = QHBoxLayout()
        top.addWidget(self.rec_indicator)
        top.addWidget(self.meter, 1)
        # Here rather than among the buttons: that row stays narrow enough for the window's
        # first size once styled (it widened the window at the first dictation).
        top.addWidget(self.auto_copy)

        buttons = QHBoxLayout()
        buttons.addWidget(self.talk_button)
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.clear_button)

        correction = QHBoxLayout()
        correction.addWidget(label("Last dictation:", wrap=False))
        correction.addWidget(self.correction_edit, 1)
        correction.addWidget(self.correct_button)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.notice_bar)
        left_layout.addLayout(top)
        left_layout.addWidget(self.text, 1)
        left_layout.addLayout(buttons)
        left_layout.addLayout(correction)
        left_layout.addWidget(self.pending_bar)
        left_layout.addWidget(self.status)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(label("History", wrap=False))
        right_layout.addWidget(self.history, 1)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([620, 300])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 16)
        layout.addWidget(label("Dictate", "title"))
        layout.addWidget(splitter, 1)

        self.talk_button.pressed.connect(self.talk_pressed)
        self.talk_button.released.connect(self.talk_released)
        self.copy_button.clicked.connect(self.copy_text)
        self.clear_button.clicked.connect(self.text.clear)
        self.auto_copy.toggled.connect(self.auto_copy_toggled)
        self.correct_button.clicked.connect(self._submit_correction)
        self.correction_edit.returnPressed.connect(self._submit_correction)
        self.history.itemDoubleClicked.connect(self._history_to_text)

    def attach(self, controller: DictationController) -> None:
        """Send the button and corrections to `controller`; show what it reports."""
        self.talk_pressed.connect(controller.start)
        self.talk_released.connect(controller.stop)
        self.correction_submitted.connect(controller.save_correction)
        controller.listening_changed.connect(self.set_recording)
        controller.partial.connect(self.show_partial)
        controller.dictated.connect(self.show_dictation)
        controller.history_added.connect(self.add_history_item)
        controller.status.connect(self.show_status)
        controller.correction_saved.connect(self.correction_done)
        controller.corrected.connect(self.replace_last_dictation)
        controller.pending_changed.connect(self.pending_bar.set_count)
        self.pending_bar.retry_requested.connect(controller.retry_pending)
        self.pending_bar.discard_requested.connect(controller.discard_pending)

    # -- state ---------------------------------------------------------------------------

    def wants_push_to_talk(self) -> bool:
        """Space dictates unless the user is typing in a text field."""
        focus = self.focusWidget()
        return focus not in (self.text, self.correction_edit) and self.talk_button.isEnabled()

    def set_microphone_available(self, available: bool, message: str = "") -> None:
        self.talk_button.setEnabled(available)
        if not available:
            set_state(self.status, message, "bad")
        elif self.status.objectName() == "bad":
            set_state(self.status, "", "idle")

    def set_recording(self, recording: bool) -> None:
        if recording:
            set_state(self.rec_indicator, "\u25cf Recording", "recording")
            self.talk_button.setText(TALK_TEXT_RECORDING)
        else:
            set_state(self.rec_indicator, "Ready", "idle")
            self.talk_button.setText(TALK_TEXT)
        self.talk_button.setProperty("recording", recording)
        self.talk_button.style().unpolish(self.talk_button)
        self.talk_button.style().polish(self.talk_button)

    def set_auto_copy(self, on: bool) -> None:
        """Show the setting without reporting it back as a change (auto_copy_toggled)."""
        self.auto_copy.blockSignals(True)
        self.auto_copy.setChecked(on)
        self.auto_copy.blockSignals(False)

    def show_status(self, text: str, state: str = "idle") -> None:
        set_state(self.status, text, state)

    def show_partial(self, text: str) -> None:
        """What the model hears so far, while the key is still held (not yet in the text)."""
        self.show_status(f"Hearing: \u201c{text.strip()}\u2026\u201d" if text.strip() else "Listening\u2026")
        self.partial_shown.emit(text)

    # -- transcripts ---------------------------------------------------------------------

    def append_transcript(self, text: str) -> None:
        """Append at the end of the text area (a space or nothing before, as needed)."""
        current = self.text.toPlainText()
        sep = "" if not current or current.endswith(("\n", " ")) or text.startswith("\n") else " "
        cursor = self.text.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(sep + text)
        self.text.setTextCursor(cursor)
        self.text.ensureCursorVisible()

    def show_dictation(self, text: str, hypothesis: str) -> None:
        """A finished dictation: `text` goes into the text area, `hypothesis` (what was
        recognised) into the correction field."""
        self.append_transcript(text)
        # A cursor selecting the inserted words follows edits made elsewhere in the text,
        # so a correction can replace exactly them later.
        end = self.text.textCursor().position()
        cursor = QTextCursor(self.text.document())
        cursor.setPosition(end - _qt_length(text))
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self._last_insert = cursor
        self.set_last_dictation(hypothesis)

    def replace_last_dictation(self, old: str, new: str) -> None:
        """The last dictation was corrected: replace its words in the text area (unless
        the user changed them there already) and its history entry."""
        cursor = self._last_insert
        if cursor is not None and cursor.selectedText().replace("\u2029", "\n") == old:
            start = min(cursor.position(), cursor.anchor())
            cursor.insertText(new)
            cursor.setPosition(start)
            cursor.setPosition(start + _qt_length(new), QTextCursor.MoveMode.KeepAnchor)
        for row in range(self.history.count()):
            item = self.history.item(row)
            if item.text() == old:  # newest first: the first match is the last dictation
                item.setText(new)
                break

    def copy_text(self) -> None:
        """Copy the selection, or all of the text area when nothing is selected."""
        cursor = self.text.textCursor()
        text = cursor.selectedText().replace("\u2029", "\n") or self.text.toPlainText()
        QGuiApplication.clipboard().setText(text)
        self.show_status("Copied to the clipboard.", "good")

    def set_last_dictation(self, text: str) -> None:
        self.correction_edit.setText(text)
        self.correction_edit.setEnabled(True)
        self.correct_button.setEnabled(True)

    def correction_done(self) -> None:
        self.correction_edit.setEnabled(False)
        self.correct_button.setEnabled(False)

    def _submit_correction(self) -> None:
        corrected = self.correction_edit.text().strip()
        if not corrected:
            self.show_status("Type the correct text first.", "bad")
            return
        self.correction_submitted.emit(corrected)

    def add_notice(self, text: str) -> None:
        """Show a notice until dismissed (the same notice once)."""
        self.notice_bar.add(text)

    def clear_notices(self) -> None:
        self.notice_bar.clear()

    def set_history(self, entries: list[dict]) -> None:
        self.history.clear()
        for entry in reversed(entries):  # newest first
            self.add_history_item(entry.get("text", ""), entry.get("time", ""), at_end=True)

    def add_history_item(self, text: str, time: str = "", at_end: bool = False) -> None:
        item = QListWidgetItem(text)
        if time:
            item.setToolTip(time)
        if at_end:
            self.history.addItem(item)
        else:
            self.history.insertItem(0, item)

    def _history_to_text(self, item: QListWidgetItem) -> None:
        self.append_transcript(item.text())


def _qt_length(text: str) -> int:
    """Length in a QTextDocument's positions (UTF-16 units, as Qt counts)."""
    return len(text.encode("utf-16-le")) // 2
