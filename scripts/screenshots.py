"""Save screenshots of the app's main screens to docs/screenshots/ (real X11 via Xvfb).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Uses $DISPLAY when set, else starts a private Xvfb. Qt runs on its real xcb platform.
The app runs on a throw-away data folder with an injected audio source (a gentle tone,
so the level meters show something); the adaptation screen's numbers are passed to the
view (the mean check on meta-validation speakers), since no adaptation is run here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def start_xvfb() -> subprocess.Popen | None:
    """Start Xvfb on a free display when there is no DISPLAY; returns the process."""
    if os.environ.get("DISPLAY"):
        return None
    if shutil.which("Xvfb") is None:
        sys.exit("No DISPLAY and no Xvfb (apt-get install xvfb xauth libxcb-cursor0 ...)")
    for number in range(90, 120):
        if not Path(f"/tmp/.X{number}-lock").exists():
            command = ["Xvfb", f":{number}", "-screen", "0", "1280x900x24", "-nolisten", "tcp"]
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.environ["DISPLAY"] = f":{number}"
            deadline = time.monotonic() + 10
            while not Path(f"/tmp/.X11-unix/X{number}").exists():
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit("Xvfb did not start")
                time.sleep(0.1)
            return proc
    sys.exit("no free X display number")


class ToneSource:
    """An injected audio source whose level meter shows a steady, speech-like level."""

    sample_rate = 16000
    name = "USB Microphone"

    def start_take(self) -> None:
        pass

    def stop_take(self) -> np.ndarray:
        return np.zeros(1600, np.float32)

    def level(self) -> float:
        return 0.45 + 0.1 * np.sin(time.monotonic() * 7)

    def close(self) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    xvfb = start_xvfb()
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    from dictation.app import storage

    # Keep the real model cache (the base model is exported once per machine), but put the
    # profile created for the screenshots in a throw-away data folder.
    os.environ.setdefault("DICTATION_CACHE", str(storage.cache_root()))
    home = Path(tempfile.mkdtemp(prefix="dictation-shots-"))
    os.environ["DICTATION_HOME"] = str(home)
    try:
        return shoot(args.out)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(10)


def shoot(out: Path) -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication(["dictation"])
    from dictation.app.gui.main_window import PAGE_ADAPT, PAGE_DICTATE, PAGE_ENROLL, MainWindow

    def settle(ms: int = 300) -> None:
        end = time.monotonic() + ms / 1000
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def save(widget, name: str) -> None:
        settle()
        path = out / f"{name}.png"
        if not widget.grab().save(str(path)):
            raise SystemExit(f"could not save {path}")
        print(path)

    window = MainWindow(audio_source=ToneSource())
    window.resize(960, 640)
    window.show()
    window.first_run.name_edit.setText("Alex")
    save(window, "1-first-run")

    window.first_run.create_button.click()
    wizard = window.wizard
    wizard.index = 2
    wizard._show_prompt()
    wizard.last_audio = np.zeros(16000, np.float32)  # as after a real take
    wizard._checked(
        wizard.current_prompt(),
        np.zeros(16000, np.float32),
        _rejected("too_quiet", "Your voice was too quiet. Speak a little louder or move closer to the microphone."),
    )
    save(window, "2-enrollment-wizard")

    window.show_page(PAGE_ADAPT)
    view = window.adapt_view
    view.set_summary(10, 2, "base model (not adapted yet)")
    view.set_running(True)
    view.show_progress(12, 40, 0.412, 95)
    save(window, "3-adaptation-running")
    # The mean cross-validated check on the 24 meta-validation speakers (model card).
    view.show_finished({"type": "done", "installed": True, "before_wer": 0.160, "after_wer": 0.154})
    save(window, "4-adaptation-done")

    window.show_page(PAGE_DICTATE)
    dictation = window.dictation_view
    for text in (
        "Dear Sam, thank you for your quick reply.",
        "The invoice for 360 euros is due on the first of June.",
        "Best regards, Alex",
    ):
        dictation.append_transcript(text)
        dictation.add_history_item(text)
    dictation.set_last_dictation("Best regards, Alex")
    dictation.show_status("Copied to the clipboard.", "good")
    save(window, "5-dictation")

    dialog = window.profile_actions.open_settings()
    dialog.resize(dialog.sizeHint())
    save(dialog, "6-settings")
    dialog.reject()

    window.show_page(PAGE_ENROLL)
    window.close()
    settle(100)
    return 0


def _rejected(problem: str, reason: str):
    from dictation.app.enrollment import TakeCheck

    return TakeCheck(problem, reason, {})


if __name__ == "__main__":
    raise SystemExit(main())
