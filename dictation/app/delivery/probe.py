"""`python -m dictation.app.delivery.probe OUT`: another application to deliver text into.

A window with one text field that takes the keyboard focus and appends a JSON line
`{"t": <CLOCK_MONOTONIC seconds>, "text": <field>}` to OUT at start (with "ready" and
its window id) and on every change, so the tests and `benchmarks/delivery_latency.py`
see what arrived and when. Runs on the X11 (xcb) platform plugin, or on Wayland with
`Probe(path, platform="wayland")`.

`Probe(path)` starts that window in a subprocess and reads what it recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


class Probe:
    """The probe window, run as another process (another X client)."""

    def __init__(self, path: Path, timeout: float = 30.0, platform: str = "xcb") -> None:
        self.path = Path(path)
        env = dict(os.environ, QT_QPA_PLATFORM=platform)
        self.process = subprocess.Popen([sys.executable, "-m", "dictation.app.delivery.probe", str(self.path)], env=env)
        ready = self.wait_for(lambda record: bool(record.get("ready")), timeout)
        if ready is None:
            self.close()
            raise RuntimeError(f"the probe window did not get the focus within {timeout:g} s")
        self.window = int(ready["window"])

    def records(self) -> list[dict]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.endswith("}")]

    @property
    def text(self) -> str:
        records = self.records()
        return str(records[-1]["text"]) if records else ""

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float) -> dict | None:
        """The first record that satisfies `predicate`, polling until `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.records():
                if predicate(record):
                    return record
            if self.process.poll() is not None:
                return None
            time.sleep(0.02)
        return None

    def wait_text(self, expected: str, timeout: float = 10.0) -> dict | None:
        """The record at which the field first held `expected`."""
        return self.wait_for(lambda record: record["text"] == expected, timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dictation.app.delivery.probe OUT", file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QLineEdit

    app = QApplication(["probe"])
    out = open(args[0], "a", encoding="utf-8")

    def record(text: str, **extra: object) -> None:
        out.write(json.dumps({"t": time.monotonic(), "text": text, **extra}, ensure_ascii=False) + "\n")
        out.flush()

    field = QLineEdit()
    field.setWindowTitle("dictation probe")
    field.setMinimumWidth(600)
    field.textChanged.connect(record)
    field.show()

    def focus() -> None:
        field.activateWindow()
        field.setFocus()
        if field.hasFocus() and field.isActiveWindow():  # the compositor/WM gave it the keyboard
            record(field.text(), ready=True, window=int(field.winId()))
        else:
            QTimer.singleShot(50, focus)

    QTimer.singleShot(0, focus)
    status = app.exec()
    out.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
