"""The voice embedding in the app (issue 28): voice.onnx exported from a bundle's voice space
and checked against torch, the torch-free `VoiceEmbedder`, a profile's voice (`voice.npz`),
the enrollment's "different speaker" notice and the profile suggestion at the first
dictation, in the real window.

A small voice space is trained here with `dictation train-voice` on synthetic speakers
(flite and espeak-ng voices, 12 sentences each) and exported with the export function the
base model build calls; the test clips are other sentences of some of those voices.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import soundfile as sf
from conftest import READ_SENTENCES, tts_wav

WAIT_MS = 60_000
SENTENCES = READ_SENTENCES[:12]
VOICES = {  # split -> (engine, voice): one speaker each
    "train": [
        ("flite", "slt"),
        ("flite", "awb"),
        ("flite", "rms"),
        ("flite", "kal"),
        ("espeak", "en-us"),
        ("espeak", "en-us+f3"),
        ("espeak", "en-gb-scotland"),
        ("espeak", "en-029"),
    ],
    "validation": [("espeak", "en-gb-x-rp"), ("espeak", "en-us+m7"), ("espeak", "en-gb+f2")],
}
# Other sentences than the corpus': what the profiles' voices say in the tests.
OTHER_SENTENCES = [
    "The weather was lovely on our trip to the coast.",
    "Please call me back when you get this message.",
    "Seven bright lanterns hung above the old bridge.",
    "He folded the letter and put it in his coat.",
    "Our neighbours painted their fence a pale green.",
]
ALEX, SAM = ("flite", "slt"), ("flite", "awb")  # two profiles' voices, very unlike each other


def say(voice: tuple[str, str], text: str, folder: Path) -> np.ndarray:
    path = folder / f"{voice[0]}-{voice[1]}-{abs(hash(text))}.wav"
    if not path.exists():
        tts_wav(text, path, *voice)
    audio, rate = sf.read(path, dtype="float32")
    assert rate == 16000
    return audio


@pytest.fixture(scope="module")
def voice_model(tmp_path_factory, dictation_cli):
    """(bundle with a voice space, folder with voice.onnx + voice.json, voice.json's contents)."""
    from dictation.adapt.model.build_base import add_voice
    from dictation.lab.corpus.splits import split_of

    root = tmp_path_factory.mktemp("voice-app")
    corpus = root / "corpus"
    corpus.mkdir()
    names = iter(f"app-voice-{i}" for i in range(1000))
    lines = []
    for split, voices in VOICES.items():
        for engine, voice in voices:
            spk = next(n for n in names if split_of(n) == split)
            (corpus / spk).mkdir()
            for i, text in enumerate(SENTENCES):
                tts_wav(text, corpus / spk / f"{i:02d}.wav", engine, voice)
                row = {"audio": f"{spk}/{i:02d}.wav", "text": text, "speaker": spk, "source": engine}
                lines.append(json.dumps({**row, "licence": "GPL (espeak-ng, flite)", "duration": 2.5}))
    (corpus / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    cmd = dictation_cli + [
        "train-voice", "--corpus", str(corpus), "--run-dir", str(root / "run"), "--out", str(root / "bundle"),
        "--head-steps", "200", "--clusters", "0", "--threads", "1", "--json",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = root / "voice-model"  # stands in for the base export's folder (only the voice files)
    out.mkdir()
    info = add_voice(out, root / "bundle")  # what build_base does after the model's export
    assert info is not None
    return root / "bundle", out, info


@pytest.fixture(scope="module")
def clips(voice_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("voice-clips")
    return lambda voice, i: say(voice, OTHER_SENTENCES[i], folder)


# -- export ---------------------------------------------------------------------------------


def test_voice_graph_matches_torch_and_is_refused_when_it_does_not(voice_model, tmp_path, monkeypatch) -> None:
    import onnxruntime as ort

    from dictation.adapt.model.bundle import load_bundle
    from dictation.adapt.voice_space import export
    from dictation.adapt.voice_space.space import load_voice_space

    bundle_dir, out, info = voice_model
    saved = json.loads((out / "voice.json").read_text())
    version = json.loads((bundle_dir / "bundle.json").read_text())["version"]
    assert saved["dim"] == info["dim"] == 128 and saved["model_version"] == version
    assert saved["threshold"] == pytest.approx(load_voice_space(bundle_dir).threshold)
    parity = saved["parity"]
    assert parity["min_cosine"] >= export.MIN_COSINE and parity["max_abs"] <= export.MAX_ABS
    assert len(parity["lengths_s"]) == 3
    # A real session on any length (dynamic samples axis): a unit vector of `dim`.
    session = ort.InferenceSession(str(out / "voice.onnx"), providers=["CPUExecutionProvider"])
    for n in (8000, 51234):
        (emb,) = session.run(None, {"audio": np.random.default_rng(n).normal(0, 0.1, (1, n)).astype(np.float32)})
        assert emb.shape == (saved["dim"],) and np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-4)
    # Past the tolerance, nothing is written (and nothing is left behind).
    monkeypatch.setattr(export, "MIN_COSINE", 1.5)
    bundle = load_bundle(bundle_dir)
    with pytest.raises(export.VoiceExportParityError, match="disagrees with torch"):
        export.export_voice(bundle.model, load_voice_space(bundle_dir), tmp_path, "x")
    assert list(tmp_path.iterdir()) == []


def test_a_bundle_without_a_voice_space_exports_no_voice_graph(tmp_path) -> None:
    from dictation.adapt.model.build_base import add_voice
    from dictation.app.base_model import bundled_model_dir
    from dictation.app.voice import VoiceEmbedder

    plain = tmp_path / "bundle"
    plain.mkdir()
    for name in ("bundle.json", "weights.npz"):
        shutil.copy(bundled_model_dir() / name, plain / name)
    assert add_voice(tmp_path, plain) is None
    assert not (tmp_path / "voice.onnx").exists() and not (tmp_path / "voice.json").exists()
    embedder = VoiceEmbedder(tmp_path)  # an export without a voice graph: nothing available
    assert not embedder.available and "no voice graph" in embedder.problem
    assert embedder.embed(np.ones(16000, np.float32)) is None


def test_the_base_exports_cache_key_follows_the_voice_space(voice_model, tmp_path) -> None:
    from dictation.app.base_model import bundle_digest

    bundle_dir, _, _ = voice_model
    copy = tmp_path / "bundle"
    copy.mkdir()
    for name in ("bundle.json", "weights.npz"):
        shutil.copy(bundle_dir / name, copy / name)
    without = bundle_digest(copy)
    shutil.copy(bundle_dir / "voice_space.npz", copy / "voice_space.npz")
    assert bundle_digest(copy) != without


# -- the embedder and a profile's voice -----------------------------------------------------


def test_embedder_places_clips_of_one_voice_together_and_another_voice_apart(voice_model, clips) -> None:
    from dictation.app.voice import VoiceEmbedder, prototype, similarity

    _, out, info = voice_model
    embedder = VoiceEmbedder(out)
    assert embedder.available and embedder.threshold == pytest.approx(info["threshold"])
    alex = [embedder.embed(clips(ALEX, i)) for i in range(4)]
    sam = embedder.embed(clips(SAM, 0))
    same, other = similarity(alex[0], alex[1]), similarity(alex[0], sam)
    assert same > other + 0.3, (same, other)
    mine = prototype(alex[:3])
    assert not embedder.is_other_voice(alex[3], mine) and embedder.is_other_voice(sam, mine)
    # Silence gives no embedding; 48 kHz input is resampled, so gives about the same one.
    assert embedder.embed(np.zeros(32000, np.float32)) is None
    from dictation.app.audio import resample

    loud = embedder.embed(resample(clips(ALEX, 0), 16000, 48000), 48000)
    assert similarity(loud, alex[0]) > 0.98
    # A damaged graph: not available, said why; nothing raises.
    broken = out.parent / "broken-voice"
    broken.mkdir(exist_ok=True)
    shutil.copy(out / "voice.json", broken / "voice.json")
    (broken / "voice.onnx").write_bytes(b"not a model")
    damaged = VoiceEmbedder(broken)
    assert not damaged.available and "cannot be loaded" in damaged.problem


def test_profile_voice_follows_its_takes(voice_model, clips, dictation_home) -> None:
    from dictation.app.profiles import Profile
    from dictation.app.voice import VOICE_FILE, VoiceEmbedder, read_prototype, update_profile_voice

    embedder = VoiceEmbedder(voice_model[1])
    profile = Profile.create("Alex")
    takes = [profile.add_take(f"p{i}", OTHER_SENTENCES[i], clips(ALEX, i), {}) for i in range(3)]
    record = update_profile_voice(profile, embedder)
    assert record is not None and set(record.embeddings) == {t.id for t in takes}
    assert (profile.path / VOICE_FILE).is_file()
    stored = read_prototype(profile.path, embedder.model_version)
    assert stored is not None and np.allclose(stored, record.prototype(), atol=1e-6)
    assert read_prototype(profile.path, "another version") is None
    profile.remove_take(takes[0].id)
    assert set(update_profile_voice(profile, embedder).embeddings) == {t.id for t in takes[1:]}
    # A damaged file is computed again from the takes.
    (profile.path / VOICE_FILE).write_bytes(b"garbage")
    assert len(update_profile_voice(profile, embedder).embeddings) == 2


# -- the window -----------------------------------------------------------------------------


class ScriptedSource:
    """An injected capture: each take is the next prepared clip."""

    sample_rate = 16000
    name = "Scripted test microphone"

    def __init__(self) -> None:
        self.clips: list[np.ndarray] = []
        self.current: np.ndarray | None = None

    def start_take(self) -> None:
        self.current = self.clips.pop(0)

    def stop_take(self) -> np.ndarray:
        clip, self.current = self.current, None
        return clip

    def level(self) -> float:
        return 0.5 if self.current is not None else 0.05

    def close(self) -> None:
        pass


def record_take(qtbot, window, audio: np.ndarray) -> None:
    """One enrollment take of the current sentence, kept (the transcript check is the
    enrollment suite's subject: a take it calls misread is kept on the user's word)."""
    wizard = window.wizard
    window.recorder.source.clips.append(audio)
    wizard.record_button.pressed.emit()
    wizard.record_button.released.emit()
    qtbot.waitUntil(lambda: not wizard._checking, timeout=WAIT_MS)
    if wizard.keep_button.isVisible():
        wizard.keep_anyway()
    assert "saved" in wizard.status.text(), wizard.status.text()
    window.transcription.wait(WAIT_MS)  # the voice check runs after the save, on the worker
    qtbot.wait(50)  # its result is delivered through the event loop


def test_enrollment_flags_a_take_of_another_voice_and_rerecords_it(make_window, voice_model, clips, qtbot) -> None:
    from dictation.app.gui.main_window import PAGE_ENROLL
    from dictation.app.gui.services import Services
    from dictation.app.gui.wizard_pages import VOICE_NOTICE
    from dictation.app.profiles import Profile

    profile = Profile.create("Alex")
    for i in range(3):
        profile.add_take(f"earlier-{i}", OTHER_SENTENCES[i], clips(ALEX, i), {})
    window = make_window(services=Services(base_model_dir=lambda: voice_model[1]), audio_source=ScriptedSource())
    assert window.profile.name == "Alex"
    wizard = window.wizard
    window.show_page(PAGE_ENROLL)
    flagged: list[tuple[str, float]] = []
    window.voice_checks.other_voice.connect(lambda take_id, sim: flagged.append((take_id, sim)))

    record_take(qtbot, window, clips(ALEX, 3))  # the same voice: no notice
    assert not wizard.voice_notice.isVisible() and flagged == []
    wizard.next_prompt()
    sentence = wizard.current_prompt()
    record_take(qtbot, window, clips(SAM, 1))  # another voice: the notice, the take kept so far
    qtbot.waitUntil(lambda: wizard.voice_notice.isVisible(), timeout=5000)
    assert wizard.voice_notice.text.text() == VOICE_NOTICE
    assert flagged and flagged[0][0] == wizard.accepted[sentence.id]
    assert flagged[0][1] < voice_model[2]["threshold"]
    assert wizard.next_button.isEnabled()  # non-blocking: Next goes on with the take
    assert len(window.profile.takes()) == 5
    wizard.voice_notice.rerecord_button.click()  # Re-record: the take is dropped, same sentence
    assert not wizard.voice_notice.isVisible() and wizard.current_prompt() is sentence
    assert len(window.profile.takes()) == 4 and sentence.id not in wizard.accepted
    assert not wizard.next_button.isEnabled() and wizard.record_button.isEnabled()


def test_first_dictation_suggests_the_profile_whose_voice_matches(make_window, voice_model, clips, qtbot) -> None:
    from dictation.app.gui.services import Services
    from dictation.app.profiles import Profile
    from dictation.app.voice import VoiceEmbedder, update_profile_voice

    embedder = VoiceEmbedder(voice_model[1])
    for name, voice in (("Alex", ALEX), ("Sam", SAM)):
        profile = Profile.create(name)
        for i in range(3):
            profile.add_take(f"p{i}", OTHER_SENTENCES[i], clips(voice, i), {})
        update_profile_voice(profile, embedder)
    services = Services(base_model_dir=lambda: voice_model[1])

    def dictate(window, audio: np.ndarray) -> None:
        said: list[str] = []
        window.dictation_controller.dictated.connect(lambda text, _: said.append(text))
        window.dictation_controller.dictate(audio, 16000)
        qtbot.waitUntil(lambda: bool(said), timeout=WAIT_MS)
        window.transcription.wait(WAIT_MS)  # the voice match runs after the dictation
        qtbot.wait(50)

    # Alex's own voice: nothing suggested.
    first = make_window(services=services)
    assert first.profile.name == "Alex"
    dictate(first, clips(ALEX, 4))
    assert not first.voice_checks.suggestion.isVisible()

    # A new launch, Sam speaking in Alex's profile: Sam is suggested; Switch opens it.
    window = make_window(services=services)
    assert window.profile.name == "Alex"
    dictate(window, clips(SAM, 4))
    banner = window.voice_checks.suggestion
    qtbot.waitUntil(banner.isVisible, timeout=5000)
    assert banner.text.text() == "This sounds like Sam. Switch profile?"
    banner.switch_button.click()
    assert window.profile.name == "Sam" and not banner.isVisible()
    # Once per launch: Alex speaking in Sam's profile now suggests nothing.
    dictate(window, clips(ALEX, 4))
    assert not banner.isVisible()
