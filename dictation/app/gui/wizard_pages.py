"""The enrollment wizard's two pages: reading a prompt, and the end of a session.

Layout only; `EnrollmentWizard` fills them in and reacts to their buttons.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QVBoxLayout, QWidget

from dictation.app.gui.level_meter import LevelMeter
from dictation.app.gui.style import label

VOICE_NOTICE = "This sounds like a different speaker than your other recordings. Re-record?"


class VoiceNotice(QWidget):
    """A saved take whose voice is far from the profile's other takes: said, not enforced
    (Next still goes on); "Re-record" drops the take for a new recording."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = label(VOICE_NOTICE, "notice")
        self.rerecord_button = QPushButton("Re-record")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.rerecord_button)
        self.hide()


class PromptPage(QWidget):
    """One sentence to read: progress, the prompt, the level meter, status and buttons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = label("Read each sentence aloud", "title")
        self.progress_label = label("", "progress")
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.prompt_label = label("", "prompt")
        self.hint = label("Hold Space (or hold the button) while you read, release when done.", "subtitle")
        self.rec_indicator = label("Ready", "idle", wrap=False)
        self.meter = LevelMeter()
        self.status = label("", "idle")
        self.voice_notice = VoiceNotice()
        self.record_button = QPushButton("Hold to record")
        self.record_button.setObjectName("talk")
        self.play_button = QPushButton("Play back")
        self.skip_button = QPushButton("Skip")
        # The base model misreads strong accents: the people adaptation helps most. When
        # only the transcript disagrees (the signal is fine), the user may overrule it.
        self.keep_button = QPushButton("I read it correctly: keep it")
        self.keep_button.hide()
        self.next_button = QPushButton("Next \u2192")
        self.next_button.setObjectName("primary")

        meter_row = QHBoxLayout()
        meter_row.addWidget(self.rec_indicator)
        meter_row.addWidget(self.meter, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.record_button)
        buttons.addWidget(self.play_button)
        buttons.addStretch(1)
        buttons.addWidget(self.keep_button)
        buttons.addWidget(self.skip_button)
        buttons.addWidget(self.next_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 24, 32, 24)
        layout.setSpacing(12)
        layout.addWidget(self.title)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress)
        layout.addSpacing(6)
        layout.addWidget(self.prompt_label)
        layout.addWidget(self.hint)
        layout.addLayout(meter_row)
        layout.addWidget(self.status)
        layout.addWidget(self.voice_notice)
        layout.addStretch(1)
        layout.addLayout(buttons)


class DonePage(QWidget):
    """The session is over: record more, or go on to adaptation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.done_title = label("Well done", "title")
        self.done_text = label("", "subtitle")
        self.more_button = QPushButton("Record more sentences")
        self.adapt_button = QPushButton("Adapt to my voice \u2192")
        self.adapt_button.setObjectName("primary")
        buttons = QHBoxLayout()
        buttons.addWidget(self.more_button)
        buttons.addStretch(1)
        buttons.addWidget(self.adapt_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 24, 32, 24)
        layout.addWidget(self.done_title)
        layout.addWidget(self.done_text)
        layout.addStretch(1)
        layout.addLayout(buttons)
