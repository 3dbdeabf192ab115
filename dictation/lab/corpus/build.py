"""Build the speaker-indexed corpus cache: `<dir>/manifest.jsonl` + `<dir>/<source>/<speaker>/<key>.wav`.

Resumable: an item whose manifest line exists (with the same text) is skipped; an
item whose transcript has changed since is rebuilt and its old line dropped. Each WAV is written
atomically before its manifest line is appended, so a WAV without a line (the build
was killed in between) is adopted on the next run instead of re-rendered. Work is
spread over a process pool in chunks of one speaker's items; only this (the parent)
process appends to the manifest.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from dictation.app.text import clean_transcript
from dictation.lab.corpus.common import (
    SAMPLE_RATE,
    CorpusError,
    EngineUnavailable,
    UnreadableAudio,
    atomic_write_bytes,
    decode_audio,
    resample,
    wav_bytes,
)
from dictation.lab.corpus.sources import DEFAULT_ORDER, SOURCES, Item, Source, Speaker
from dictation.lab.corpus.texts import WORDNET_HINT, wordnet_sentences

MANIFEST = "manifest.jsonl"
ENGINES = "engines.json"  # the engine and package versions of every build that wrote clips
CHUNK = 8  # items per work unit: small enough for steady progress, big enough to amortise
MIN_SECONDS, MAX_SECONDS = 0.3, 30.0


@dataclass
class SourceRequest:
    name: str
    max_speakers: int | None = None


def parse_sources(text: str | None) -> list[SourceRequest]:
    """`kokoro,espeak:50` -> requests; unknown names raise ValueError listing the known ones."""
    if not text:
        return [SourceRequest(n) for n in DEFAULT_ORDER]
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, cap = part.partition(":")
        if name not in SOURCES:
            raise ValueError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
        out.append(SourceRequest(name, int(cap) if cap else None))
    return out


@dataclass
class Summary:
    new: Counter = field(default_factory=Counter)  # source -> utterances written
    existing: Counter = field(default_factory=Counter)  # source -> already in the manifest
    adopted: Counter = field(default_factory=Counter)  # source -> WAVs found without a line
    stale: Counter = field(default_factory=Counter)  # source -> rebuilt, transcript changed
    speakers: Counter = field(default_factory=Counter)  # source -> speakers planned
    unavailable: dict[str, str] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (source, audio, reason)
    seconds: float = 0.0

    def report(self) -> str:
        lines = ["corpus build summary:"]
        for name in sorted(set(self.speakers) | set(self.new) | set(self.existing)):
            lines.append(
                f"  {name}: {self.speakers[name]} speakers, {self.new[name]} new, "
                f"{self.existing[name]} already built, {self.adopted[name]} recovered, "
                f"{self.stale[name]} rebuilt (transcript changed)"
            )
        for name, why in self.unavailable.items():
            lines.append(f"  {name}: SKIPPED - {why}")
        if self.failures:
            lines.append(f"  {len(self.failures)} utterances skipped (unreadable/undecodable audio):")
            reasons = Counter(r for _, _, r in self.failures)
            for reason, n in reasons.most_common(5):
                example = next(a for _, a, r in self.failures if r == reason)
                lines.append(f"    {n} x {reason} (e.g. {example})")
        lines.append(f"  wall time {self.seconds:.0f} s")
        return "\n".join(lines)


def read_done(out_dir: Path) -> dict[str, str]:
    """{audio path: text} of the manifest (a torn last line from a crash is ignored)."""
    done: dict[str, str] = {}
    path = out_dir / MANIFEST
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                done[rec["audio"]] = rec["text"]
            except (ValueError, KeyError, TypeError):
                continue
    return done


def drop_stale(out_dir: Path, stale: set[str]) -> None:
    """Rewrite the manifest without the lines of `stale` audio paths (their text changed)."""
    path = out_dir / MANIFEST
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["audio"] in stale:
                continue
        except (ValueError, KeyError, TypeError):
            continue  # a torn line goes too
        keep.append(line + "\n")
    atomic_write_bytes(path, "".join(keep).encode("utf-8"))


def _record(speaker: Speaker, item: Item, rel: str, seconds: float) -> dict:
    return {
        "audio": rel,
        "text": item.text,
        "speaker": speaker.id,
        "source": speaker.source,
        "licence": speaker.licence,
        "duration": round(seconds, 3),
    }


def _rel(speaker: Speaker, item: Item) -> str:
    return f"{speaker.source}/{speaker.id}/{item.key}.wav"


# --- worker side -------------------------------------------------------------------

_WORKER_SOURCES: dict[str, Source] = {}


def _worker_init() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"


def render_chunk(out_dir: str, speaker: Speaker, items: list[Item]) -> list[tuple[str, dict | str]]:
    """Render and write one speaker's items; ("ok", record) or ("fail", "audio: reason") each."""
    src = _WORKER_SOURCES.get(speaker.source)
    if src is None:
        src = _WORKER_SOURCES[speaker.source] = SOURCES[speaker.source]()
    results: list[tuple[str, dict | str]] = []
    for item in items:
        rel = _rel(speaker, item)
        try:
            audio, sr = src.render(speaker, item)
            audio = resample(np.asarray(audio, dtype=np.float32), sr, SAMPLE_RATE)
            seconds = audio.size / SAMPLE_RATE
            if not np.all(np.isfinite(audio)) or not (MIN_SECONDS <= seconds <= MAX_SECONDS):
                raise UnreadableAudio(f"unusable audio ({seconds:.2f} s)")
            if float(np.max(np.abs(audio))) < 1e-4:
                raise UnreadableAudio("silent audio")
            atomic_write_bytes(Path(out_dir) / rel, wav_bytes(audio))
            results.append(("ok", _record(speaker, item, rel, seconds)))
        except (CorpusError, OSError, ValueError, RuntimeError) as exc:
            # One bad clip must not stop the build; the summary reports it.
            results.append(("fail", f"{rel}: {type(exc).__name__}: {str(exc)[:160]}"))
    return results


def _render_star(args: tuple) -> list[tuple[str, dict | str]]:
    return render_chunk(*args)


# --- parent side -------------------------------------------------------------------


class Progress:
    """One stderr line every couple of seconds: done/total, audio hours, rate, ETA."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, every: float = 2.0):
        self.total, self.stream, self.every = total, stream, every
        self.done = self.failed = 0
        self.seconds = 0.0
        self.start = self.last = time.monotonic()

    def update(self, ok: int, failed: int, seconds: float, label: str) -> None:
        self.done += ok + failed
        self.failed += failed
        self.seconds += seconds
        now = time.monotonic()
        if now - self.last < self.every and self.done < self.total:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-6)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        self.stream.write(
            f"[corpus] {self.done}/{self.total} ({100 * self.done / max(self.total, 1):.0f}%) "
            f"{self.seconds / 3600:.2f} h new audio, {rate:.1f} utt/s, ETA {eta / 60:.0f} min, "
            f"{self.failed} skipped - {label}\n"
        )
        self.stream.flush()


def parse_splits(text: str | None) -> frozenset[str] | None:
    """`test,validation` -> those split names (None: every split); unknown names raise ValueError."""
    if not text:
        return None
    from dictation.lab.corpus.splits import SPLITS

    names = frozenset(p.strip() for p in text.split(",") if p.strip())
    unknown = sorted(names - set(SPLITS))
    if unknown or not names:
        raise ValueError(f"unknown split {', '.join(unknown) or repr(text)}; known: {', '.join(SPLITS)}")
    return names


def plan(
    requests: list[SourceRequest],
    seed: int,
    max_speakers: int | None,
    max_utterances: int | None,
    summary: Summary,
    log: TextIO,
    splits: frozenset[str] | None = None,
    templates_only: bool = False,
) -> list[tuple[Speaker, list[Item]]]:
    """Speakers and their items, in build order; unavailable sources are reported and skipped.

    `splits` keeps only the speakers of those splits (`assets/corpus_splits.json`, or the
    hash rule for unlisted ones), before the per-source speaker cap: an evaluator can build
    the 24 held-out speakers without the 14 hours of meta-training speech. Synthetic
    speakers need WordNet's sentences (ValueError without them) unless `templates_only`.
    """
    from dictation.lab.corpus.splits import split_of

    out = []
    for req in requests:
        src = SOURCES[req.name]()
        try:
            src.check()
            speakers = src.speakers(seed)
        except EngineUnavailable as exc:
            summary.unavailable[req.name] = str(exc)
            log.write(f"[corpus] {req.name}: skipped - {exc}\n")
            continue
        if src.reads_generated_text and not templates_only and not wordnet_sentences():
            raise ValueError(
                f"WordNet's example sentences are not installed ({WORDNET_HINT}): without them "
                f"the {req.name} speakers would read template sentences only, a different corpus from "
                "the one the bundled model was trained and evaluated on, and an easier one. "
                "Install wordnet-base, or pass --templates-only to build that corpus anyway."
            )
        if splits is not None:
            speakers = [sp for sp in speakers if split_of(sp.id) in splits]
        cap = req.max_speakers if req.max_speakers is not None else max_speakers
        for sp in speakers[:cap] if cap is not None else speakers:
            out.append((sp, src.items(sp, max_utterances, seed)))
            summary.speakers[req.name] += 1
    return out


def package_version(spec: str) -> str | None:
    """Installed version of "deb:NAME" (dpkg) or "py:NAME" (this Python); None if unknown."""
    kind, _, name = spec.partition(":")
    if kind == "py":
        from importlib import metadata

        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def record_engines(out_dir: Path, sources: list[Source], summary: Summary) -> None:
    """Append this build's engine versions to `engines.json`: a rebuild that renders other
    audio (a new espeak-ng, another WordNet) can then be told from one that does not."""
    specs = sorted(
        {p for src in sources for p in src.packages}
        | ({"deb:wordnet-base"} if any(src.reads_generated_text for src in sources) else set())
    )
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "new_utterances": dict(summary.new),
        "packages": {spec: package_version(spec) for spec in specs},
    }
    path = out_dir / ENGINES
    builds = []
    if path.is_file():
        try:
            builds = list(json.loads(path.read_text(encoding="utf-8")).get("builds", []))
        except (ValueError, AttributeError):
            # Unreadable: kept aside, not overwritten, and a new record started, rather
            # than failing a build whose clips are already written.
            os.replace(path, path.with_name(ENGINES + ".unreadable"))
    builds.append(record)
    atomic_write_bytes(path, (json.dumps({"builds": builds}, indent=1) + "\n").encode("utf-8"))


def _adopt(out_dir: Path, speaker: Speaker, item: Item) -> dict | None:
    """A WAV written before a crash but never recorded: record it if it decodes."""
    path = out_dir / _rel(speaker, item)
    try:
        audio, sr = decode_audio(path.read_bytes())
    except (UnreadableAudio, OSError):
        return None
    if sr != SAMPLE_RATE:
        return None
    return _record(speaker, item, _rel(speaker, item), audio.size / sr)


def build(
    out_dir: Path,
    sources: str | None = None,
    max_speakers: int | None = None,
    max_utterances: int | None = None,
    seed: int = 0,
    jobs: int = 1,
    log: TextIO = sys.stderr,
    splits: str | None = None,
    templates_only: bool = False,
) -> Summary:
    """Build (or resume) the corpus in `out_dir`; returns what happened.

    `splits` ("test,validation") builds only those splits' speakers; see `plan`.
    """
    t0 = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = Summary()
    todo_plan = plan(
        parse_sources(sources), seed, max_speakers, max_utterances, summary, log, parse_splits(splits), templates_only
    )
    done = read_done(out_dir)

    units: list[tuple[str, Speaker, list[Item]]] = []
    adopted: list[dict] = []
    stale: set[str] = set()
    for speaker, items in todo_plan:
        pending = []
        for item in items:
            item.text = clean_transcript(item.text)
            rel = _rel(speaker, item)
            if rel in done and done[rel] != item.text:
                # The transcript changed since this clip was built (a parser or text fix):
                # rebuild the item rather than keep a wrong target.
                stale.add(rel)
                summary.stale[speaker.source] += 1
                pending.append(item)
            elif rel in done:
                summary.existing[speaker.source] += 1
            elif (out_dir / rel).exists() and (rec := _adopt(out_dir, speaker, item)) is not None:
                adopted.append(rec)
                summary.adopted[speaker.source] += 1
            else:
                pending.append(item)
        units += [(str(out_dir), speaker, pending[i : i + CHUNK]) for i in range(0, len(pending), CHUNK)]

    if stale:
        drop_stale(out_dir, stale)
    with _Manifest(out_dir / MANIFEST) as manifest:
        for rec in adopted:
            manifest.append(rec)
        progress = Progress(sum(len(u[2]) for u in units), log)
        for speaker, results in _run_units(units, jobs):
            ok = failed = 0
            seconds = 0.0
            for status, value in results:
                if status == "ok":
                    manifest.append(value)
                    summary.new[speaker.source] += 1
                    seconds += value["duration"]
                    ok += 1
                else:
                    summary.failures.append((speaker.source, value.split(":", 1)[0], value.split(": ", 1)[1]))
                    failed += 1
            progress.update(ok, failed, seconds, speaker.id)
    if sum(summary.new.values()):
        record_engines(out_dir, [SOURCES[name]() for name in sorted(summary.speakers)], summary)
    summary.seconds = time.monotonic() - t0
    return summary


def _run_units(units: list, jobs: int) -> Iterator[tuple[Speaker, list]]:
    if jobs <= 1 or len(units) <= 1:
        for unit in units:
            yield unit[1], render_chunk(*unit)
        return
    ctx = mp.get_context("spawn")  # onnxruntime and threads do not survive fork well
    with ctx.Pool(jobs, initializer=_worker_init) as pool:
        # imap keeps submission order, so the build order (real speech first) holds.
        for unit, results in zip(units, pool.imap(_render_star, units, chunksize=1)):
            yield unit[1], results


class _Manifest:
    """Append-only JSONL, one line per utterance, flushed per line."""

    def __init__(self, path: Path):
        self.path = path
        self.f: TextIO | None = None

    def __enter__(self) -> _Manifest:
        return self

    def append(self, record: dict) -> None:
        if self.f is None:  # opened lazily: a no-op rerun does not touch the file
            if self.path.exists():
                data = self.path.read_bytes()
                if data and not data.endswith(b"\n"):  # killed mid-line: drop the torn tail
                    atomic_write_bytes(self.path, data[: data.rfind(b"\n") + 1])
            self.f = open(self.path, "a", encoding="utf-8")
        self.f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.f.flush()

    def __exit__(self, *exc) -> None:
        if self.f is not None:
            os.fsync(self.f.fileno())
            self.f.close()


def speaker_counts_by_source(seed: int = 0) -> dict[str, int]:
    """{speaker: planned utterance count} over available sources (used to generate splits)."""
    out: dict[str, int] = {}
    for name, cls in SOURCES.items():
        src = cls()
        try:
            src.check()
            if name == "kokoro":
                from dictation.lab.corpus import kokoro

                out.update({f"kokoro-{v}": 0 for v in kokoro.voice_names()})
                continue
            speakers = src.speakers(seed)
        except EngineUnavailable:
            continue
        for sp in speakers:
            out[sp.id] = len(src.items(sp, None, seed)) if name == "fotaq" else 0
    return out
