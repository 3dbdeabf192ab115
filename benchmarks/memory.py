"""Dictation-process memory and idle CPU: RSS after loading the model and transcribing, torch absent.

`python benchmarks/memory.py [--idle-seconds S]`

Runs in a fresh interpreter what the app's dictation path runs (runtime + audio capture
module), transcribes a 5 s clip, then idles and reports resident memory (VmRSS, VmHWM)
and the CPU time used while idle.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def rss_mb() -> dict:
    status = Path("/proc/self/status").read_text()
    vals = {
        line.split(":")[0]: int(line.split()[1]) / 1024
        for line in status.splitlines()
        if line.startswith(("VmRSS", "VmHWM"))
    }
    return {"rss_mb": round(vals["VmRSS"], 1), "peak_rss_mb": round(vals["VmHWM"], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument(
        "--with-qt",
        action="store_true",
        help="also create the app's QApplication and main window (offscreen), as the GUI process does",
    )
    args = parser.parse_args()
    if args.with_qt:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        from PySide6.QtWidgets import QApplication

        from dictation.app.gui.main_window import MainWindow

        app = QApplication([])
        window = MainWindow()
        window.show()
        app.processEvents()
    from common import speech_clip

    import dictation.app.audio.capture  # noqa: F401  (the app's capture module is loaded too)
    from dictation.app.base_model import base_model_dir
    from dictation.app.runtime import Transcriber

    start = rss_mb()
    tr = Transcriber(base_model_dir())
    loaded = rss_mb()
    audio, _ = speech_clip(5.0)
    text = tr.transcribe(audio).text
    after = rss_mb()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    time.sleep(args.idle_seconds)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    idle_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(
        json.dumps(
            {
                "interpreter": start,
                "model_loaded": loaded,
                "after_transcribe": after,
                "idle_cpu_percent": round(100 * idle_cpu / args.idle_seconds, 2),
                "torch_imported": "torch" in sys.modules,
                "text": text,
                "pid": os.getpid(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
