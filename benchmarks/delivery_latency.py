"""Dictating into another application: key release to text there, and idle CPU.

`python benchmarks/delivery_latency.py [--repeats N] [--idle-seconds S] [--json]`

Needs an X display and a PulseAudio server with the `vmic` sink, as ./run-tests makes
them; without them it starts its own (scripts/test-env.sh, Xvfb + private PulseAudio).

1. End to end: `dictation listen` runs as a subprocess (base model, a profile so the
   delivered text is in its history); another X client (the probe window, a Qt
   process) has the focus. For a 5 s utterance (flite) played into the virtual
   microphone while the key is held through XTEST, the time from the key release to
   the probe's last change (CLOCK_MONOTONIC, comparable across processes); median
   over `--repeats`, for type (XTEST), type with `xdotool type`, and paste. Each run
   also checks the text arrived exactly as delivered (the profile's history).
2. Delivery alone: `Delivery.deliver` of a fixed 80-character text (ASCII plus é, ß,
   curly quotes, an em dash, an emoji) into the probe, per typist and paste; median
   time to the last character, and whether it arrived intact.
3. Idle CPU of `dictation listen` over `--idle-seconds` with nothing spoken, from
   /proc/PID/stat (% of one core).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import speech_clip  # noqa: E402

FIXED = "Dear Zoë, the café’s “naïve” menu — crème brûlée and Straße-style pretzels 😀 was great."
KEY = ["Control_L", "Alt_L", "space"]


def _keys(display, kind: str, names: list[str]) -> None:
    from Xlib import XK, X
    from Xlib.ext import xtest

    for name in names:
        code = display.keysym_to_keycode(XK.string_to_keysym(name))
        xtest.fake_input(display, X.KeyPress if kind == "press" else X.KeyRelease, code)
    display.sync()


def _clear(display, probe) -> None:
    from dictation.app.delivery.x11_typing import XTestTyper
    from dictation.app.hotkeys import parse_key

    typer = XTestTyper(display)
    typer.press_combo(parse_key("ctrl+a"))
    typer.press_combo(parse_key("BackSpace"))
    probe.wait_text("", timeout=5)


def _settled(probe, since: float, quiet: float = 1.5, timeout: float = 60.0) -> dict | None:
    """The probe's last record after `since`, once nothing has changed for `quiet` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = [r for r in probe.records() if r["t"] >= since]
        if records and records[-1]["text"] and time.monotonic() - records[-1]["t"] > quiet:
            return records[-1]
        time.sleep(0.05)
    return None


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Listen:
    def __init__(self, output: str, typist: str, home: Path) -> None:
        env = dict(os.environ, DICTATION_HOME=str(home), DICTATION_TYPIST=typist, XDG_SESSION_TYPE="x11")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("dictation")), "listen", "--output", output, "--key", "ctrl+alt+space"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line != "ready\n":
            raise RuntimeError(f"dictation listen did not start ({line!r})")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def end_to_end(display, probe, clip: Path, output: str, typist: str, repeats: int, home: Path) -> dict:
    from dictation.app.profiles import Profile

    listener = Listen(output, typist, home)
    latencies, exact = [], 0
    try:
        for _ in range(repeats):
            _clear(display, probe)
            _keys(display, "press", KEY)
            subprocess.run(["paplay", "--device=vmic", str(clip)], check=True)
            time.sleep(0.3)
            _keys(display, "release", list(reversed(KEY)))
            released = time.monotonic()
            record = _settled(probe, released)
            if record is None:
                continue
            latencies.append(record["t"] - released)
            delivered = Profile.open("bench").history()[-1]["text"]
            exact += record["text"].strip() == delivered.strip()
    finally:
        listener.stop()
    return {
        "mode": output if output != "type" else f"type ({typist})",
        "median_ms": round(statistics.median(latencies) * 1000) if latencies else None,
        "min_ms": round(min(latencies) * 1000) if latencies else None,
        "max_ms": round(max(latencies) * 1000) if latencies else None,
        "n": len(latencies),
        "arrived_exactly": f"{exact}/{repeats}",
    }


def delivery_alone(display, probe, output: str, typist: str, repeats: int) -> dict:
    from dictation.app.delivery import Delivery
    from dictation.app.delivery.deliver import session_output

    delivery = Delivery(output, backend=session_output(typist))
    times, intact = [], 0
    try:
        for _ in range(repeats):
            _clear(display, probe)
            started = time.monotonic()
            delivery.deliver(FIXED)
            record = _settled(probe, started, quiet=0.5, timeout=20)
            if record is None:
                continue
            times.append(record["t"] - started)
            intact += record["text"] == FIXED
            time.sleep(1.1)  # past the spare keycodes' restore, as between real dictations
    finally:
        delivery.close()
    return {
        "mode": output if output != "type" else f"type ({typist})",
        "median_ms": round(statistics.median(times) * 1000) if times else None,
        "n": len(times),
        "intact": f"{intact}/{repeats}",
    }


def idle_cpu(seconds: float, home: Path) -> dict:
    listener = Listen("type", "xtest", home)
    try:
        time.sleep(2.0)  # settle after start-up
        before, t0 = _cpu_seconds(listener.process.pid), time.monotonic()
        time.sleep(seconds)
        used, elapsed = _cpu_seconds(listener.process.pid) - before, time.monotonic() - t0
    finally:
        listener.stop()
    return {"seconds": round(elapsed, 1), "cpu_percent_of_one_core": round(100 * used / elapsed, 2)}


def run(args: argparse.Namespace) -> int:
    from dictation.app.base_model import base_model_dir
    from dictation.app.delivery.probe import Probe
    from dictation.app.hotkeys.xutil import open_display
    from dictation.app.profiles import Profile

    work = Path(tempfile.mkdtemp(prefix="dictation-delivery-bench-"))
    home = work / "home"
    os.environ["DICTATION_HOME"] = str(home)
    os.environ.setdefault("DICTATION_CACHE", str(Path.home() / ".cache" / "dictation"))
    base_model_dir()  # exported once, before anything is timed
    Profile.create("bench")
    _, clip = speech_clip(5.0, work)
    display = open_display()
    probe = Probe(work / "probe.jsonl")
    results: dict = {"end_to_end": [], "delivery_alone": [], "fixed_text": FIXED}
    try:
        for output, typist in (("type", "xtest"), ("type", "xdotool"), ("paste", "xtest")):
            if typist == "xdotool" and shutil.which("xdotool") is None:
                continue
            results["delivery_alone"].append(delivery_alone(display, probe, output, typist, args.repeats))
            results["end_to_end"].append(end_to_end(display, probe, clip, output, typist, args.repeats, home))
        if args.idle_seconds > 0:
            results["idle"] = idle_cpu(args.idle_seconds, home)
    finally:
        probe.close()
        display.close()
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
        return 0
    print(f"5 s utterance, key release -> last character in the other application ({args.repeats} repeats):")
    for row in results["end_to_end"]:
        print(
            f"  {row['mode']:16} median {row['median_ms']} ms (min {row['min_ms']}, max {row['max_ms']}), "
            f"text exactly as delivered {row['arrived_exactly']}"
        )
    print(f"Delivery alone of {len(FIXED)} characters ({FIXED!r}):")
    for row in results["delivery_alone"]:
        print(f"  {row['mode']:16} median {row['median_ms']} ms, intact {row['intact']}")
    if "idle" in results:
        idle = results["idle"]
        print(f"Idle CPU of dictation listen over {idle['seconds']} s: {idle['cpu_percent_of_one_core']} % of one core")
    return 0


def _has_test_env() -> bool:
    if not os.environ.get("DISPLAY") or shutil.which("pactl") is None:
        return False
    sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True, text=True)
    return sinks.returncode == 0 and "\tvmic\t" in sinks.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not _has_test_env() and not os.environ.get("DICTATION_BENCH_INNER"):
        # Xvfb and a private PulseAudio with the virtual microphone, as ./run-tests makes them.
        script = (
            f'source "{ROOT}/scripts/test-env.sh"; start_test_env >&2; unset QT_QPA_PLATFORM; '
            f'DICTATION_BENCH_INNER=1 "{sys.executable}" "{Path(__file__).resolve()}" "$@"'
        )
        env = dict(os.environ, DICTATION_ROOT=str(ROOT))
        return subprocess.run(["bash", "-c", script, "bench", *sys.argv[1:]], env=env).returncode
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
