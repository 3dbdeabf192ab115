"""Long dictation: accuracy, memory and key-release latency of speech cut at pauses.

`python benchmarks/long_dictation.py [--minutes 3] [--trials 3] [--speaker fotaq-joe]`

The dictation is made of real recorded sentences: one speaker's lines of the
Flight of the Amazon Queen voice acting (the corpus the lab builds, `dictation corpus
build`), in their order, joined with pauses of 0.35-0.9 s. Without that corpus, flite
sentences are used instead (and the script says so).

1. WER of `dictation transcribe` on the whole dictation (a subprocess: cut at pauses,
   pieces decoded in order) vs the same sentences transcribed one by one, and the
   subprocess's peak RSS. The same long transcription with each piece prompted by the
   text before it (<|startofprev|>, off in the app) is scored too.
2. Key release -> text: `IncrementalDictation` fed 100 ms chunks at real-time pace (the
   user speaking) for a 60 s and a 5 s dictation that end with the same 5 s of lines
   (the release 0.3 s after the last word); the time `finish()` takes after the last
   chunk (median of the trials). The 5 s figure is set against today's plain
   `Transcriber.transcribe` of the same 5 s. Run on an idle machine: other load shows
   in the figures (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SENTENCES

CHUNK = 1600  # 100 ms, about what the capture hands over at a time


def corpus_lines(speaker: str | None, seconds: float) -> tuple[list[np.ndarray], list[str], str]:
    """(clips, texts, what they are): consecutive lines of one real speaker."""
    from dictation.app.audio import load_audio
    from dictation.app.storage import cache_root

    manifest = cache_root() / "corpus" / "manifest.jsonl"
    if manifest.is_file():
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r.get("source") == "fotaq" and len(r["text"].split()) >= 2]
        by_speaker: dict[str, list[dict]] = {}
        for r in rows:
            by_speaker.setdefault(r["speaker"], []).append(r)
        if by_speaker:
            name = speaker or max(by_speaker, key=lambda s: sum(r["duration"] for r in by_speaker[s]))
            chosen, total = [], 0.0
            for r in sorted(by_speaker[name], key=lambda r: r["audio"]):
                chosen.append(r)
                total += r["duration"] + 0.6
                if total >= seconds:
                    break
            clips = [load_audio(manifest.parent / r["audio"]) for r in chosen]
            return clips, [r["text"] for r in chosen], f"{len(chosen)} recorded lines of {name} (FOTAQ voice acting)"
    print("no corpus with real recordings here (dictation corpus build): flite sentences instead", file=sys.stderr)
    out = Path(tempfile.mkdtemp(prefix="dictation-long-"))
    clips, texts, total = [], [], 0.0
    while total < seconds:
        text = SENTENCES[len(texts) % len(SENTENCES)]
        wav = out / f"{len(texts)}.wav"
        subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(wav)], check=True, capture_output=True)
        clips.append(load_audio(wav))
        texts.append(text)
        total += len(clips[-1]) / 16000 + 0.6
    return clips, texts, f"{len(texts)} flite sentences (no real recordings found)"


def join_with_pauses(clips: list[np.ndarray], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts = []
    for clip in clips:
        parts += [clip, np.zeros(int(rng.uniform(0.35, 0.9) * 16000), np.float32)]
    return np.concatenate(parts)


def dictation_of(clips: list[np.ndarray], seconds: float) -> tuple[np.ndarray, int]:
    """(audio, lines used): about `seconds` of whole lines joined with pauses, ending 0.3 s
    after the last word (when the user lets go of the key)."""
    from dictation.app.runtime import speech_bounds

    rng = np.random.default_rng(1)
    parts: list[np.ndarray] = []
    used = 0
    for clip in clips:
        if parts and sum(len(x) for x in parts) / 16000 + 0.6 + len(clip) / 16000 > seconds + 0.5:
            break
        if parts:
            parts.append(np.zeros(int(rng.uniform(0.35, 0.9) * 16000), np.float32))
        parts.append(clip)
        used += 1
    bounds = speech_bounds(parts[-1])  # the recording's own trailing silence goes too
    if bounds is not None:
        parts[-1] = parts[-1][: bounds[1]]
    return np.concatenate([*parts, np.zeros(int(0.3 * 16000), np.float32)]), used


def cli_transcribe(path: Path) -> tuple[dict, float, int]:
    """(JSON record, wall seconds, peak RSS in MB) of `dictation transcribe --json`."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "dictation", "transcribe", "--json", str(path)], capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    return json.loads(proc.stdout), wall, peak_mb


def release_latency(transcriber, audio: np.ndarray, realtime: bool) -> tuple[float, str]:
    """Seconds from the last chunk fed to the text, feeding `audio` as a speaking user."""
    from dictation.app.long_transcription import IncrementalDictation

    dictation = IncrementalDictation(transcriber)
    start = time.perf_counter()
    for i, at in enumerate(range(0, len(audio), CHUNK)):
        if realtime:  # the user speaks: chunks arrive as the audio plays
            time.sleep(max(0.0, start + i * CHUNK / 16000 - time.perf_counter()))
        dictation.feed(audio[at : at + CHUNK])
    released = time.perf_counter()
    text = dictation.finish()
    return time.perf_counter() - released, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--trials", type=int, default=3, help="latency trials per length")
    parser.add_argument("--speaker", default=None, help="corpus speaker (default: the one with most speech)")
    parser.add_argument("--fast", action="store_true", help="feed the latency trials faster than real time")
    args = parser.parse_args()

    from dictation.app.base_model import base_model_dir
    from dictation.app.long_transcription import transcribe_blocks
    from dictation.app.runtime import Transcriber
    from dictation.app.text import wer

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    clips, texts, what = corpus_lines(args.speaker, args.minutes * 60)
    audio = join_with_pauses(clips)
    print(f"dictation: {what}, {len(audio) / 16000:.0f} s")
    tmp = Path(tempfile.mkdtemp(prefix="dictation-long-"))
    long_wav = tmp / "long.wav"
    import soundfile as sf

    sf.write(long_wav, audio, 16000, subtype="PCM_16")

    transcriber = Transcriber(base_model_dir())
    one_by_one = [transcriber.transcribe(c).text for c in clips]
    wer_one = wer(texts, one_by_one)
    record, wall, peak_mb = cli_transcribe(long_wav)
    wer_long = wer([" ".join(texts)], [record["text"]])
    prompted = transcribe_blocks(transcriber, [audio], use_prompt=True)
    wer_prompted = wer([" ".join(texts)], [prompted.text])
    print(f"WER one by one:          {100 * wer_one:.1f} %")
    print(
        f"WER long (transcribe):   {100 * wer_long:.1f} %  ({record['segments']} pieces, relative "
        f"{(wer_long / wer_one - 1) * 100 if wer_one else 0:+.0f} %; {wall:.0f} s; peak RSS {peak_mb} MB)"
    )
    print(f"WER long with prompts:   {100 * wer_prompted:.1f} %  ({prompted.segments} pieces)")

    # The same last 5 s in both: the 60 s dictation is 55 s of other lines, a pause, then
    # the 5 s one, so the two differ only in what came before the key release.
    five, used = dictation_of(clips, 5.0)
    before, _ = dictation_of(clips[used:], 54.0)
    sixty = np.concatenate([before, np.zeros(int(0.5 * 16000), np.float32), five])
    trials = {}
    for name, piece in (("60 s", sixty), ("5 s", five)):
        times = [release_latency(transcriber, piece, not args.fast)[0] for _ in range(args.trials)]
        trials[name] = statistics.median(times)
        print(
            f"key release -> text, {len(piece) / 16000:.1f} s dictation: {1000 * trials[name]:.0f} ms "
            f"(median of {len(times)})"
        )
    plain_times = []
    for _ in range(max(5, args.trials)):
        t0 = time.perf_counter()
        transcriber.transcribe(five)
        plain_times.append(time.perf_counter() - t0)
    print(f"today's Transcriber.transcribe, 5 s: {1000 * statistics.median(plain_times):.0f} ms")
    print(f"ratio 60 s / 5 s: {trials['60 s'] / trials['5 s']:.2f}x (target <= 1.2x)")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
