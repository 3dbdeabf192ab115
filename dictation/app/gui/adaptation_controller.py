"""Adapting the open profile's model: one job at a time, its new model used at once; and
going back to the previous adapted model or to the base model."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from dictation.app.gui.adapt_runner import AdaptRunner
from dictation.app.gui.profile_session import ProfileSession
from dictation.app.gui.services import Services
from dictation.app.gui.transcription_service import TranscriptionService
from dictation.app.profiles import ProfileError


class AdaptationController(QObject):
    """Starts and cancels adaptation of the open profile; reports like `AdaptRunner`.

    Signals: started(), progress(step, total, loss, eta_seconds), status(str),
    finished(done_message: dict), failed(str), cancelled(). After `started`, exactly one
    of finished/failed/cancelled follows; `failed` also reports a job that could not be made.
    """

    started = Signal()
    progress = Signal(int, int, float, float)
    status = Signal(str)
    finished = Signal(dict)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(
        self,
        services: Services,
        transcription: TranscriptionService,
        session: ProfileSession,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.transcription = transcription
        self.session = session
        self.runner: AdaptRunner | None = None
        self._profile_name = ""  # whose model the running job adapts

    def is_running(self) -> bool:
        return self.runner is not None and self.runner.is_running()

    def running_for(self) -> str | None:
        """The profile the running job adapts (None when none runs)."""
        return self._profile_name if self.is_running() else None

    def start(self) -> None:
        profile = self.session.profile
        if profile is None or self.is_running():
            return
        try:
            job = self.services.make_job(
                profile.name, self.services.adapt_steps, str(self.session.settings.get("device") or "auto")
            )
        except Exception as exc:  # whatever the factory raises, the user reads why
            self.failed.emit(str(exc))
            return
        runner = AdaptRunner(job, self)
        runner.progress.connect(self.progress)
        runner.status.connect(self.status)
        runner.finished.connect(self._adapted)
        runner.failed.connect(self.failed)
        runner.cancelled.connect(self.cancelled)
        self.runner, self._profile_name = runner, profile.name
        self.started.emit()
        runner.start()

    def cancel(self) -> None:
        """Ask the running job to stop (the previous model stays installed)."""
        if self.runner is not None:
            self.runner.cancel()

    def _adapted(self, message: dict) -> None:
        profile = self.session.profile
        if profile is not None and profile.name == self._profile_name and message.get("installed"):
            self._use_profile_model()
        self.finished.emit(message)

    # -- the model in use ----------------------------------------------------------------

    def has_previous_model(self) -> bool:
        """Whether the open profile keeps a previous adapted model to go back to."""
        profile = self.session.profile
        try:
            return profile is not None and profile.previous_metadata() is not None
        except (ProfileError, OSError):
            return False

    def has_adapted_model(self) -> bool:
        """Whether the open profile has an adapted model (else the base model is in use)."""
        profile = self.session.profile
        return profile is not None and profile.model_dir() is not None

    def use_previous_model(self) -> str | None:
        """Go back to the adapted model installed before the last one (the current one is
        removed); returns why not, or None. Not while adapting: the job would replace it."""
        profile = self.session.profile
        if profile is None or self.is_running():
            return "not while adapting"
        try:
            profile.restore_previous_model()
        except (ProfileError, OSError) as exc:
            return str(exc)
        self._use_profile_model()
        return None

    def use_base_model(self) -> str | None:
        """Remove the adapted models (the recordings stay) and dictate with the base
        model; returns why not, or None."""
        profile = self.session.profile
        if profile is None or self.is_running():
            return "not while adapting"
        try:
            profile.reset_to_base()
        except (ProfileError, OSError) as exc:
            return str(exc)
        self._use_profile_model()
        return None

    def _use_profile_model(self) -> None:
        """Dictate with the open profile's model as it is on disk now (`model_loaded` of the
        transcription service follows, and the window shows the model in use)."""
        profile = self.session.profile
        model_dir = profile.model_dir() if profile is not None else None
        if model_dir is not None:
            self.transcription.forget(model_dir)  # same path, new files: drop the cached session
        self.transcription.set_model_dir(model_dir)
        self.transcription.preload()
