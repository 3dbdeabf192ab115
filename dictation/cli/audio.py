"""`dictation devices` and `dictation record`: check the microphone from a terminal.

Nothing heavy at import: dictation.app.audio (numpy, soundfile, PortAudio) loads only
when a command runs.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    devices = subparsers.add_parser("devices", help="list audio input devices (* = default)")
    devices.set_defaults(func=cmd_devices)

    record = subparsers.add_parser("record", help="record from the microphone into a 16 kHz mono WAV file")
    record.add_argument("--seconds", type=float, required=True, help="how long to record")
    record.add_argument("--device", default=None, help="input device name (or part of it) or index")
    record.add_argument(
        "--pre-roll",
        type=float,
        default=0.5,
        help="seconds of already-buffered audio to keep before the start (default 0.5)",
    )
    record.add_argument("out", metavar="OUT.wav", help="where to write the recording")
    record.set_defaults(func=cmd_record)


def cmd_devices(args: argparse.Namespace) -> int:
    from dictation.app import audio

    try:
        devices = audio.list_input_devices()
    except audio.AudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not devices:
        print("No audio input device found (is PulseAudio/PipeWire running?)", file=sys.stderr)
        return 1
    print("Input devices (* = default):")
    for backend, title in (("portaudio", "PortAudio"), ("pulse", "PulseAudio sources")):
        group = [d for d in devices if d.backend == backend]
        if not group:
            continue
        print(f"  {title}:")
        for d in group:
            mark = "*" if d.is_default else " "
            key = f"[{d.index}] " if backend == "portaudio" else ""
            print(f"  {mark} {key}{d.label}  ({d.channels} ch, {d.default_samplerate:g} Hz)")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from dictation.app import audio
    from dictation.app.storage import StorageError

    if args.seconds <= 0:
        print("error: --seconds must be greater than 0", file=sys.stderr)
        return 2
    try:
        samples, mic = audio.record(args.seconds, device=args.device, pre_roll=args.pre_roll)
    except audio.DeviceLostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.captured.size:  # keep what was recorded: the user may not get it again
            try:
                audio.write_wav(args.out, exc.captured)
                print(f"the partial recording was written to {args.out}", file=sys.stderr)
            except StorageError as write_exc:
                print(f"error: {write_exc}", file=sys.stderr)
        return 1
    except audio.AudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        path = audio.write_wav(args.out, samples)
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    q = audio.analyze(samples)
    device = mic.device.label if mic.device else "?"
    print(
        f"wrote {path}: {q.duration:.2f} s at {audio.SAMPLE_RATE} Hz mono from {device} "
        f"(captured at {mic.native_rate} Hz); level {q.rms_dbfs:.1f} dBFS, peak {q.peak:.2f}"
    )
    if q.is_silent:
        print("warning: the recording is silent; check the microphone and its volume", file=sys.stderr)
    if q.is_clipped:
        print("warning: the recording is clipped; lower the input volume", file=sys.stderr)
    return 0
