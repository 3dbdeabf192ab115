"""Which microphones there are, and opening the chosen one for the recorder."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from dictation.app.gui.first_run import NO_MIC_TEXT
from dictation.app.gui.recorder import AudioSource, Recorder
from dictation.app.gui.services import NoMicrophoneError, Services


class Microphones(QObject):
    """Lists input devices and gives the recorder its source.

    An injected `AudioSource` (tests, screenshots) stands in for every device.
    Signals: availability_changed(bool available, str message): after each `open`;
    `message` says why there is no microphone ("" when there is one).
    names_changed(list[str]): the device list was read again.
    """

    availability_changed = Signal(bool, str)
    names_changed = Signal(list)

    def __init__(
        self,
        services: Services,
        recorder: Recorder,
        injected_source: AudioSource | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.recorder = recorder
        self.injected_source = injected_source
        self.names: list[str] = []
        self.error = ""  # why the chosen microphone is not available ("" when it is)

    def refresh(self) -> list[str]:
        """List the input devices again (the sound system may have changed)."""
        if self.injected_source is not None:
            self.names = [getattr(self.injected_source, "name", "Injected audio source")]
            return self.names
        try:
            self.names = self.services.list_microphones()
            self.error = ""
        except NoMicrophoneError as exc:
            self.names = []
            self.error = f"The sound system is not available ({exc})."
        self.names_changed.emit(self.names)
        return self.names

    def open(self, name: str) -> bool:
        """Open the microphone `name` ("" for the default) as the recorder's source."""
        source: AudioSource | None
        if self.injected_source is not None:
            source = self.injected_source
            self.error = ""
        elif not self.names:
            source = None
            self.error = NO_MIC_TEXT
        else:
            self.recorder.set_source(None)  # release the old device before opening another
            try:
                source = self.services.open_microphone(name or None)
                self.error = ""
            except NoMicrophoneError as exc:
                source = None
                self.error = (
                    f"The microphone \u201c{name or 'default'}\u201d could not be "
                    f"opened ({exc}). Choose another one in Settings. You can "
                    "still transcribe files (File \u2192 Transcribe file\u2026)."
                )
        self.recorder.set_source(source)
        available = source is not None
        self.availability_changed.emit(available, self.error)
        return available
