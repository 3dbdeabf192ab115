"""Adaptation time for 10 (or --phrases N) enrollment phrases: CPU, and CUDA when present.

`python benchmarks/adaptation.py [--threads T] [--steps N] [--phrases N] [--repeats R]
[--pairs DIR] [--bundle DIR] [--devices cpu,cuda] [--precision P] [--no-export] [--no-check]
[--no-baseline]`

Times `dictation.adapt.procedure.adapt` (bundle load excluded, batch preparation and all
inner steps included; the steps the bundle gives that many phrases unless --steps) on 10
flite TTS phrases (or the first 10 NAME.wav + NAME.txt pairs of --pairs), then the ONNX export of the result and the app's cross-validated check
(`cross_check`: two half-size adaptations and the transcription of every phrase by the
base and the fold models). When the bundle adds speed copies of the phrases
(`enroll_speed_copies`), the same phrases without copies are timed too, as the baseline
(ratio printed); when the inner loop runs in bfloat16 (the bundle's `inner_precision`
"auto" on a CPU with native bfloat16, or --precision), the same adaptation in float32 is
the second baseline. The first run on CUDA includes its start-up (kernel loading); the
median over repeats is the figure to quote.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SENTENCES, speech_clip

from dictation.adapt.inner_loop import PRECISIONS, resolve_precision


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="default: the bundle's inner steps")
    parser.add_argument("--phrases", type=int, default=10, help="enrollment phrases (a user's takes)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pairs", type=Path, default=None, help="folder of NAME.wav + NAME.txt phrases")
    parser.add_argument("--bundle", type=Path, default=None, help="bundle dir (default: the bundled model)")
    parser.add_argument("--devices", default="", help="comma-separated (default: cpu, and cuda when present)")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default=None, help="inner-loop precision (default: the bundle's)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the baselines (no speed copies; float32)")
    args = parser.parse_args()

    import torch

    from dictation.adapt.model.bundle import load_bundle
    from dictation.adapt.procedure import adapt, precision_of, speed_copies_of

    torch.set_num_threads(args.threads)
    takes = []
    if args.pairs:
        from dictation.lab.evaluate import load_pairs

        takes = load_pairs(args.pairs)[: args.phrases]
    else:
        for i in range(args.phrases):
            audio, _ = speech_clip(3.0 + (i % 3), voice=["slt", "awb", "rms"][i % 3])
            takes.append((audio, " ".join(SENTENCES[j % len(SENTENCES)] for j in range(i, i + 1))))
    audio_s = sum(len(a) for a, _ in takes) / 16000
    devices = [d for d in args.devices.split(",") if d] or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    first = load_bundle(args.bundle)
    factors, precision = speed_copies_of(first), precision_of(first, args.precision)
    for device in devices:
        used = resolve_precision(precision, device)
        protocols = [(factors, used)]
        if not args.no_baseline:
            protocols += [((), used)] if factors else []
            protocols += [(factors, "float32")] if used != "float32" else []
        medians = {}
        for proto in protocols:
            times = []
            for _ in range(args.repeats):
                bundle = load_bundle(args.bundle)
                t = time.perf_counter()
                adapted = adapt(
                    takes, steps=args.steps, device=device, bundle=bundle, speed_copies=proto[0], precision=proto[1]
                )
                times.append(time.perf_counter() - t)
                if proto == protocols[0]:
                    app_adapted = adapted  # the app's protocol: the one exported below
            medians[proto] = statistics.median(times)
            label = f"+ copies at {', '.join(f'{f:g}x' for f in proto[0])}" if proto[0] else "no copies"
            print(
                f"{device}: {len(takes)} phrases ({audio_s:.1f} s audio) {label}, {adapted.steps} steps, "
                f"{proto[1]}, {args.threads} threads: median {medians[proto]:.2f} s "
                f"(runs: {', '.join(f'{x:.2f}' for x in times)})"
            )
        if ((), used) in medians:
            print(
                f"{device}: speed copies cost {medians[(factors, used)] / medians[((), used)]:.2f}x "
                "the adaptation without them"
            )
        if (factors, "float32") in medians and used != "float32":
            print(
                f"{device}: {used} takes {medians[(factors, used)] / medians[(factors, 'float32')]:.2f}x "
                "the time of float32"
            )
    if not args.no_export:
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            app_adapted.export(Path(d) / "model")
        print(f"ONNX export + parity check of the adapted model: {time.perf_counter() - t:.2f} s")
    if not args.no_check:
        from dictation.adapt.procedure import cross_check

        check = cross_check(
            takes, steps=args.steps, device=devices[-1], bundle=load_bundle(args.bundle), precision=args.precision
        )
        print(
            f"cross-validated check ({check.folds} folds, {devices[-1]}): {check.seconds:.2f} s; "
            f"WER base {check.before_wer:.1%}, adapted without the phrase {check.after_wer:.1%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
