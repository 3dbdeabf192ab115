"""The open profile's area of the window: navigation and the Enroll / Adapt / Dictate /
Vocabulary / What I learned pages.

Push-to-talk goes to the page showing: Space and finished takes reach the enrollment
wizard on the Enroll page and the dictation controller on the Dictate page.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QStackedWidget, QWidget

from dictation.app.gui.adapt_view import AdaptView
from dictation.app.gui.dictation_controller import DictationController
from dictation.app.gui.dictation_view import DictationView
from dictation.app.gui.learned_page import LearnedPage
from dictation.app.gui.push_to_talk import PushToTalkKey
from dictation.app.gui.recorder import Recorder
from dictation.app.gui.transcription_service import TranscriptionService
from dictation.app.gui.vocabulary_page import VocabularyPage
from dictation.app.gui.wizard import EnrollmentWizard

PAGE_ENROLL, PAGE_ADAPT, PAGE_DICTATE, PAGE_VOCABULARY, PAGE_LEARNED = 0, 1, 2, 3, 4


class ProfilePages(QWidget):
    """Navigation plus the three pages. Signals: page_shown(int page).

    `key` is Space as push-to-talk in this area's window: `key.install()` once the area is
    placed, `key.remove()` when the window closes.
    """

    page_shown = Signal(int)

    def __init__(
        self,
        recorder: Recorder,
        transcription: TranscriptionService,
        dictation: DictationController,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.recorder = recorder
        self.dictation = dictation
        self.wizard = EnrollmentWizard(recorder, transcription.check_take)
        self.adapt_view = AdaptView()
        self.dictation_view = DictationView()
        self.vocabulary_page = VocabularyPage()
        self.learned_page = LearnedPage()

        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.addItems(["Enroll", "Adapt", "Dictate", "Vocabulary", "What I learned"])
        self.nav.setFixedWidth(150)
        self.nav.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.wizard)
        self.pages.addWidget(self.adapt_view)
        self.pages.addWidget(self.dictation_view)
        self.pages.addWidget(self.vocabulary_page)
        self.pages.addWidget(self.learned_page)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.nav)
        layout.addWidget(self.pages, 1)

        self.nav.currentRowChanged.connect(self.show_page)
        self.wizard.adapt_requested.connect(lambda: self.show_page(PAGE_ADAPT))
        self.adapt_view.record_more_requested.connect(self._record_more)
        self.dictation_view.attach(dictation)
        recorder.take_ready.connect(self._take_ready)
        self.key = PushToTalkKey(
            self, wanted=lambda: self.push_to_talk_target() is not None, recording=recorder.is_recording
        )
        self.key.pressed.connect(self.push_to_talk_pressed)
        self.key.released.connect(self.push_to_talk_released)

    def show_page(self, page: int) -> None:
        if self.recorder.is_recording():
            self.recorder.cancel()
        self.pages.setCurrentIndex(page)
        if self.nav.currentRow() != page:
            self.nav.blockSignals(True)
            self.nav.setCurrentRow(page)
            self.nav.blockSignals(False)
        if page == PAGE_DICTATE:
            self.dictation_view.talk_button.setFocus()
        if page == PAGE_ENROLL:
            self.wizard.setFocus()
        self.page_shown.emit(page)

    def _record_more(self) -> None:
        self.wizard.start_session()
        self.show_page(PAGE_ENROLL)

    # -- push-to-talk --------------------------------------------------------------------

    def _showing(self, page: int) -> bool:
        # isHidden: the window's root stack hides this area while the first-run page shows.
        return not self.isHidden() and self.pages.currentIndex() == page

    def push_to_talk_target(self) -> QWidget | None:
        """The page Space talks to now (None: Space is an ordinary key)."""
        if self._showing(PAGE_DICTATE) and self.dictation_view.wants_push_to_talk():
            return self.dictation_view
        if self._showing(PAGE_ENROLL) and self.wizard.wants_push_to_talk():
            return self.wizard
        return None

    def push_to_talk_pressed(self) -> None:
        target = self.push_to_talk_target()
        if target is self.wizard:
            self.wizard.press()
        elif target is self.dictation_view:
            self.dictation.start()

    def push_to_talk_released(self) -> None:
        if self.dictation.is_listening():
            self.dictation.stop()
        elif self.pages.currentIndex() == PAGE_ENROLL:
            self.wizard.release()

    def _take_ready(self, audio: np.ndarray) -> None:
        """Enrollment takes go to the wizard (dictation takes are the controller's)."""
        if self._showing(PAGE_ENROLL) and not self.dictation.is_listening():
            self.wizard.handle_take(audio)
