"""dictation.app.audio: resampling, quality checks, WAV files, the take buffer, the
package's re-exports, and real capture through the PulseAudio virtual microphone
(loopback, pre-roll, errors)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dictation.app import audio
from dictation.app.audio import (
    SAMPLE_RATE,
    AudioDeviceError,
    AudioFileError,
    DeviceLostError,
    MicrophoneStream,
    NoInputDeviceError,
    UnsupportedSampleRateError,
)
from dictation.app.audio.takes import TakeBuffer

PHRASE = "the quick brown fox jumps over the lazy dog"


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def align(source: np.ndarray, take: np.ndarray) -> tuple[int, float]:
    """Offset of `source` inside `take` (by FFT cross-correlation) and the Pearson
    correlation of the source with the aligned stretch of the take."""
    n = 1 << int(np.ceil(np.log2(source.size + take.size)))
    xc = np.fft.irfft(np.fft.rfft(take, n) * np.conj(np.fft.rfft(source, n)), n)
    lag = int(np.argmax(xc[: take.size]))
    segment = take[lag : lag + source.size]
    ref = source[: segment.size]
    return lag, float(np.corrcoef(ref, segment)[0, 1])


def onset(x: np.ndarray, threshold: float = 0.02) -> int:
    return int(np.argmax(np.abs(x) > threshold))


# ---------------------------------------------------------------- pure functions


@pytest.mark.parametrize("rate", [48000, 44100, 22050, 8000])
def test_resample_keeps_tones_in_band(rate: int) -> None:
    for freq in (440.0, 3000.0):
        out = audio.resample(tone(freq, 1.0, rate), rate)
        assert out.dtype == np.float32 and out.size == SAMPLE_RATE
        ref = tone(freq, 1.0, SAMPLE_RATE)
        inner = slice(400, -400)  # edges see the zero padding
        assert np.max(np.abs(out[inner] - ref[inner])) < 3e-3


@pytest.mark.parametrize("rate", [48000, 44100])
def test_resample_removes_what_would_alias(rate: int) -> None:
    out = audio.resample(tone(11000.0, 1.0, rate), rate)  # above the 8 kHz Nyquist
    rms = np.sqrt(np.mean(out[400:-400] ** 2))
    assert 20 * np.log10(rms / (0.5 / np.sqrt(2))) < -50


def test_resample_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        audio.resample(np.zeros((10, 2), np.float32), 48000)
    with pytest.raises(ValueError):
        audio.resample(np.zeros(10, np.float32), 0)


def test_analyze_levels_silence_and_clipping() -> None:
    sine = tone(440, 1.0, SAMPLE_RATE, amp=0.1)
    q = audio.analyze(sine)
    assert q.duration == pytest.approx(1.0)
    assert q.rms_dbfs == pytest.approx(20 * np.log10(0.1 / np.sqrt(2)), abs=0.1)
    assert q.peak == pytest.approx(0.1, abs=1e-3)
    assert not q.is_silent and not q.is_clipped

    silent = audio.analyze(np.random.default_rng(0).normal(0, 1e-4, SAMPLE_RATE).astype(np.float32))
    assert silent.is_silent and silent.rms_dbfs < -70

    # One short word in 5 s of near-silence is still speech.
    quiet = np.zeros(5 * SAMPLE_RATE, np.float32)
    quiet[SAMPLE_RATE : SAMPLE_RATE + 3200] = tone(300, 0.2, SAMPLE_RATE, amp=0.05)
    assert not audio.analyze(quiet).is_silent

    clipped = np.clip(tone(440, 1.0, SAMPLE_RATE, amp=3.0), -1, 1)
    q = audio.analyze(clipped)
    assert q.is_clipped and q.clipped_fraction > 0.5

    empty = audio.analyze(np.zeros(0, np.float32))
    assert empty.duration == 0 and empty.is_silent
    assert set(empty.to_dict()) >= {"rms_dbfs", "peak", "clipped_fraction", "is_silent", "is_clipped", "duration"}

    with pytest.raises(ValueError):
        audio.analyze(np.array([0.0, np.nan], np.float32))


def test_wav_round_trip_pcm16_and_float(tmp_path: Path) -> None:
    x = tone(440, 0.5, SAMPLE_RATE, amp=0.7)
    p16 = audio.write_wav(tmp_path / "a.wav", x)
    assert os.stat(p16).st_mode & 0o777 == 0o600
    info = sf.info(str(p16))
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    y, rate = audio.read_wav(p16)
    assert rate == SAMPLE_RATE and np.max(np.abs(y - x)) < 1.0 / 32000

    pf = audio.write_wav(tmp_path / "f.wav", x, subtype="FLOAT")
    y, _ = audio.read_wav(pf)
    assert np.array_equal(y, x)


def test_write_wav_clips_instead_of_wrapping(tmp_path: Path) -> None:
    y, _ = audio.read_wav(audio.write_wav(tmp_path / "loud.wav", np.array([1.5, -2.0, 0.5], np.float32)))
    assert y[0] > 0.99 and y[1] < -0.99  # a wrapped 16-bit value would flip sign


def test_write_wav_rejects_nan_and_keeps_old_file(tmp_path: Path) -> None:
    target = audio.write_wav(tmp_path / "t.wav", tone(440, 0.1, SAMPLE_RATE))
    before = target.read_bytes()
    with pytest.raises(ValueError):
        audio.write_wav(target, np.array([0.1, np.inf], np.float32))
    assert target.read_bytes() == before


def test_load_audio_mixes_and_resamples_any_rate(tmp_path: Path) -> None:
    left = tone(440, 2.0, 44100, amp=0.4)
    stereo = np.stack([left, left], axis=1)  # identical channels: the mix equals either
    sf.write(str(tmp_path / "s.flac"), stereo, 44100)
    y = audio.load_audio(tmp_path / "s.flac")
    assert y.dtype == np.float32 and y.ndim == 1 and y.size == 2 * SAMPLE_RATE
    ref = tone(440, 2.0, SAMPLE_RATE, amp=0.4)
    assert np.max(np.abs(y[400:-400] - ref[400:-400])) < 2e-3


def test_unreadable_files_raise_audio_file_error(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="not found"):
        audio.load_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF this is not audio at all")
    with pytest.raises(AudioFileError, match="junk.wav"):
        audio.load_audio(tmp_path / "junk.wav")


# ---------------------------------------------------------------- take buffer (no device)


def blocks_of(*values: float, size: int = 4) -> list[np.ndarray]:
    """Blocks of `size` samples, each filled with one value, so the tests can see which
    blocks a take holds."""
    return [np.full(size, v, np.float32) for v in values]


def test_take_starts_with_the_last_pre_roll_samples() -> None:
    buffer = TakeBuffer(pre_roll=6, max_take=100)
    for block in blocks_of(1, 2, 3):
        buffer.add_block(block, block.size)
    buffer.begin()
    assert buffer.recording and buffer.pre_roll_length == 6
    for block in blocks_of(4):
        buffer.add_block(block, block.size)
    take = np.concatenate(buffer.end())
    assert take.tolist() == [2, 2, 3, 3, 3, 3, 4, 4, 4, 4]
    assert not buffer.recording and buffer.length == 10
    with pytest.raises(AudioDeviceError, match="no take"):
        buffer.end()


def test_take_without_pre_roll_holds_only_later_blocks() -> None:
    buffer = TakeBuffer(pre_roll=0, max_take=100)
    buffer.add_block(np.ones(4, np.float32), 4)
    buffer.begin()
    buffer.add_block(np.full(4, 2, np.float32), 4)
    assert np.concatenate(buffer.peek()).tolist() == [2, 2, 2, 2]
    assert buffer.recording  # peeking does not end the take


def test_take_stops_growing_at_max_take_and_says_so() -> None:
    buffer = TakeBuffer(pre_roll=0, max_take=8)
    buffer.begin()
    for block in blocks_of(1, 2, 3):
        buffer.add_block(block, block.size)
    assert buffer.truncated and buffer.length == 8
    assert np.concatenate(buffer.end()).tolist() == [1] * 4 + [2] * 4
    buffer.begin()
    assert not buffer.truncated


def test_lost_device_ends_the_take_with_what_it_held() -> None:
    buffer = TakeBuffer(pre_roll=0, max_take=100)
    assert buffer.end_if_lost(stall_timeout=None) is None
    buffer.begin()
    buffer.add_block(np.ones(4, np.float32), 4, overflowed=True)
    buffer.mark_lost("unplugged")
    lost = buffer.end_if_lost(stall_timeout=None)
    assert lost is not None and lost[0] == "unplugged" and np.concatenate(lost[1]).tolist() == [1] * 4
    assert not buffer.recording and buffer.overflows == 1
    again = buffer.end_if_lost(stall_timeout=None)  # a loss is not forgotten
    assert again is not None and again[1] == []
    assert buffer.wait_for_first_block(timeout=0) is None  # a block had arrived before


def test_no_block_and_a_loss_is_reported_as_the_reason() -> None:
    buffer = TakeBuffer()
    assert buffer.wait_for_first_block(timeout=0) == "no audio arrived within 0 s"
    buffer.mark_lost("sound server gone")
    assert buffer.wait_for_first_block(timeout=0) == "sound server gone"


def test_short_of_names_a_take_that_is_too_short_unless_full() -> None:
    buffer = TakeBuffer(pre_roll=0, max_take=8)
    assert buffer.short_of(4) is None  # no take running
    buffer.begin()
    buffer.add_block(np.ones(4, np.float32), 4)
    assert buffer.short_of(4) is None
    short = buffer.short_of(6)
    assert short is not None and np.concatenate(short).size == 4
    buffer.add_block(np.ones(4, np.float32), 4)
    assert buffer.short_of(100) is None  # full: nothing more can come


# ---------------------------------------------------------------- the package


def test_every_public_name_resolves_from_the_package() -> None:
    for name in audio.__all__:
        assert getattr(audio, name) is not None, name
    assert set(audio.__all__) <= set(dir(audio))
    with pytest.raises(AttributeError):
        audio.no_such_name  # noqa: B018


def test_sample_rate_is_defined_once() -> None:
    """Everything else imports it from dictation.app.audio.constants."""
    root = Path(__file__).resolve().parents[1]
    defining = [
        str(path.relative_to(root))
        for folder in ("dictation", "scripts", "benchmarks")
        for path in sorted((root / folder).rglob("*.py"))
        if re.search(r"^\s*SAMPLE_RATE\s*=", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert defining == ["dictation/app/audio/constants.py"]


def test_constants_and_profiles_stay_light() -> None:
    """`profiles` and `runtime` take SAMPLE_RATE from the package without loading
    soundfile or PortAudio (the package's other names load on first use)."""
    code = (
        "import sys, dictation.app.audio.constants, dictation.app.profiles, dictation.app.runtime\n"
        "bad = [m for m in ('soundfile', 'sounddevice', 'dictation.app.audio.capture') if m in sys.modules]\n"
        "sys.exit(f'loaded: {bad}' if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- real capture


def _with_leading_silence(wav: Path, seconds: float = 0.25) -> Path:
    """The virtual microphone (a null sink's monitor) drops up to one capture block at the
    start of a stream played into an idle sink; a real microphone does not. Padding makes
    that loss fall on silence, so the tests see only what the capture code does."""
    padded = np.concatenate([np.zeros(int(seconds * SAMPLE_RATE), np.float32), audio.load_audio(wav)])
    audio.write_wav(wav, padded)
    return wav


def _capture_phrase(mic: MicrophoneStream, virtual_mic, wav: Path, delay: float) -> np.ndarray:
    """Play `wav`; start the take only `delay` s after the level meter hears it begin."""
    player = virtual_mic.play(wav)
    deadline = time.monotonic() + 15
    while mic.level.rms_dbfs < -40:
        assert time.monotonic() < deadline, "the phrase never reached the microphone"
        assert player.poll() in (None, 0), player.stderr.read()
        time.sleep(0.005)
    time.sleep(delay)
    mic.start_take()
    assert player.wait(timeout=30) == 0
    time.sleep(0.4)  # the tail still travels through PulseAudio
    return mic.stop_take()


@pytest.mark.parametrize(
    "device, samplerate",
    [(None, None), ("vmic", None), ("vmic", 44100)],
    ids=["default-16k", "by-name-16k", "by-name-44k1-resampled"],
)
def test_loopback_take_includes_pre_roll(virtual_mic, tmp_path: Path, device, samplerate) -> None:
    wav = _with_leading_silence(virtual_mic.tts(PHRASE, tmp_path / "phrase.wav"))
    source = audio.load_audio(wav)
    levels: list[audio.Level] = []
    with MicrophoneStream(device, pre_roll=1.0, samplerate=samplerate, on_level=levels.append) as mic:
        assert mic.native_rate == (samplerate or SAMPLE_RATE)
        if device:
            assert mic.device is not None and "vmic" in mic.device.label
        take = _capture_phrase(mic, virtual_mic, wav, delay=0.2)
        pre = mic.take_pre_roll_samples

    lag, corr = align(source, take)
    assert corr >= 0.9, f"captured audio does not match the source (r={corr:.3f})"
    assert lag + source.size <= take.size + 160, "the end of the phrase is missing"
    # The take was started 0.2 s after the speech began: its start must come from the pre-roll.
    start = onset(source)
    assert lag + start < pre, (lag, start, pre)
    head_src = source[start : start + 1600]  # first 100 ms of speech
    head_take = take[lag + start : lag + start + 1600]
    assert np.corrcoef(head_src, head_take)[0, 1] >= 0.9
    assert max(lv.peak for lv in levels) > 0.1 and min(lv.rms_dbfs for lv in levels) < -60


def test_pre_roll_zero_loses_the_first_word(virtual_mic, tmp_path: Path) -> None:
    """Counter-check: without pre-roll a late start_take does cut the onset."""
    wav = virtual_mic.tts(PHRASE, tmp_path / "phrase.wav")
    source = audio.load_audio(wav)
    with MicrophoneStream(pre_roll=0.0) as mic:
        take = _capture_phrase(mic, virtual_mic, wav, delay=0.3)
        assert mic.take_pre_roll_samples == 0
    start = onset(source)
    head = source[start : start + 1600]
    _, corr_head = align(head, take)
    assert corr_head < 0.9  # the first 100 ms are not in the take


def test_list_input_devices_shows_virtual_mic(virtual_mic) -> None:
    devices = audio.list_input_devices()
    names = [d.name for d in devices]
    assert virtual_mic.source in names
    vmic = next(d for d in devices if d.name == virtual_mic.source)
    assert vmic.backend == "pulse" and vmic.is_default
    assert sum(d.is_default and d.backend == "portaudio" for d in devices) == 1
    assert audio.find_input_device("VMIC").name == virtual_mic.source  # case-insensitive substring


def test_unknown_device_name_is_a_typed_error(virtual_mic) -> None:
    with pytest.raises(NoInputDeviceError, match="no-such-mic"):
        MicrophoneStream("no-such-mic").start()


def test_unsupported_sample_rate_is_a_typed_error(virtual_mic) -> None:
    with pytest.raises(UnsupportedSampleRateError, match="1000000"):
        MicrophoneStream("pulse", samplerate=1_000_000).start()


def _no_sound_cards() -> bool:
    cards = Path("/proc/asound/cards")
    return not cards.exists() or "no soundcards" in cards.read_text()


@pytest.mark.skipif(not _no_sound_cards(), reason="this machine has real sound cards that stay visible")
def test_no_sound_server_gives_no_input_device_error(tmp_path: Path) -> None:
    """With PulseAudio unreachable (and no hardware), a fresh process finds no input."""
    code = textwrap.dedent(
        """
        from dictation.app import audio
        try:
            audio.MicrophoneStream().start()
        except audio.NoInputDeviceError as exc:
            print("NoInputDeviceError:", exc)
            raise SystemExit(3)
        """
    )
    env = dict(os.environ, PULSE_SERVER="unix:/nonexistent", XDG_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "sound server" in proc.stdout


@pytest.fixture
def private_pulse(virtual_mic, tmp_path: Path):
    """A second, throw-away PulseAudio server (with a null sink) that a test may kill."""
    run_dir = tmp_path / "pulse"
    run_dir.mkdir(mode=0o700)
    socket = run_dir / "native"
    proc = subprocess.Popen(
        [
            "pulseaudio",
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}",
            "--load=module-null-sink sink_name=lost rate=16000 channels=1",
        ],
        env=dict(os.environ, XDG_RUNTIME_DIR=str(run_dir), HOME=str(run_dir)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = f"unix:{socket}"
    deadline = time.monotonic() + 15
    while (
        subprocess.run(["pactl", "info"], env=dict(os.environ, PULSE_SERVER=server), capture_output=True).returncode
        != 0
    ):
        assert time.monotonic() < deadline, "private PulseAudio did not start"
        time.sleep(0.1)
    yield proc, server
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def test_device_lost_mid_take_keeps_what_was_captured(private_pulse, monkeypatch: pytest.MonkeyPatch) -> None:
    server_proc, server = private_pulse
    monkeypatch.setenv("PULSE_SERVER", server)  # libpulse reads it when the stream opens
    monkeypatch.setenv("PULSE_SOURCE", "lost.monitor")
    mic = MicrophoneStream("pulse", pre_roll=0.2)
    mic.start()
    try:
        mic.start_take()
        mic.wait_for_take(0.5)
        server_proc.send_signal(signal.SIGKILL)  # the device vanishes mid-take
        server_proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        with pytest.raises(DeviceLostError) as info:
            while time.monotonic() < deadline:
                mic.check()
                time.sleep(0.05)
        lost = info.value
        assert lost.sample_rate == SAMPLE_RATE
        assert 0.5 <= lost.captured.size / SAMPLE_RATE < 5
        assert "kept" in str(lost)
        with pytest.raises(DeviceLostError):  # later calls keep saying so
            mic.start_take()
    finally:
        mic.close()


def test_audio_module_imports_neither_qt_nor_torch() -> None:
    code = (
        "import sys, dictation.cli.audio, dictation.app.storage\n"
        "from dictation.app.audio import *  # loads every submodule the package re-exports from\n"
        "bad = [m for m in ('torch', 'PySide6', 'sounddevice') if m in sys.modules]\n"
        "sys.exit(f'imported at module level: {bad}' if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
