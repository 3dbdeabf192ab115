"""A profile's vocabulary (issue 27): the token trie's bounded bias in greedy and beam
decoding, written forms, the text file form, the store, the CLI contract, the real
model end to end through `dictation transcribe --profile`, and the page under pytest-qt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tts_wav
from test_beam_search import NO_RULES, ScriptedDecoder, distribution

from dictation.app.decoding import EOT, N_VOCAB, DecodingRules, beam_decode, greedy_decode
from dictation.app.vocabulary import (
    BiasWeights,
    DecodingVocabulary,
    PhraseBias,
    PhraseTrie,
    TextRewriter,
    VocabularyError,
    VocabularyStore,
    format_text,
    make_entry,
    parse_text,
)

REPO = Path(__file__).resolve().parent.parent
W = BiasWeights(per_token=2.0, max_phrase=5.0)
A, B, C, X, Y = 700, 701, 702, 800, 801  # the phrase is A B C; X and Y are other words


def bonus_along(bias: PhraseBias, tokens: list[int]) -> list[float]:
    """The bonus each token of `tokens` received in turn (log-probability rows of zeros)."""
    out = []
    for i, token in enumerate(tokens):
        row = np.zeros(N_VOCAB, np.float32)
        out.append(float(bias.adjust(tokens[:i], row)[token]))
    return out


# -- the trie and its bias ------------------------------------------------------------


def test_a_completed_phrase_keeps_a_bounded_bonus():
    bias = PhraseBias(PhraseTrie([[A, B, C]]), W)
    steps = bonus_along(bias, [X, A, B, C, Y])
    assert steps[0] == 0.0  # an unrelated word
    assert steps[1:4] == [2.0, 2.0, 1.0]  # 2 per token, capped at 5 for the phrase
    assert steps[4] == 0.0  # after a completed phrase nothing is given back
    assert sum(steps) == pytest.approx(W.max_phrase)


def test_an_abandoned_phrase_gives_its_bonus_back():
    bias = PhraseBias(PhraseTrie([[A, B, C]]), W)
    steps = bonus_along(bias, [A, B, Y])
    assert steps == [2.0, 2.0, -4.0] and sum(steps) == 0.0
    ended = bias.adjust([A, B], np.zeros(N_VOCAB, np.float32))
    assert ended[EOT] == -4.0  # ending the text half-way through a phrase gives it back too
    assert ended[C] == 1.0  # the way on keeps earning (to the cap)


def test_a_phrase_that_runs_on_into_a_longer_word_gives_its_bonus_back():
    tail = np.zeros(N_VOCAB, bool)
    tail[Y] = True  # Y continues the word before it ("ake" after "Vexilar"); X starts a new one
    bias = PhraseBias(PhraseTrie([[A, B, C]]), W, word_tail=tail)
    assert sum(bonus_along(bias, [A, B, C, Y])) == pytest.approx(0.0)
    assert sum(bonus_along(bias, [A, B, C, X])) == pytest.approx(W.max_phrase)
    after = bias.adjust([A, B, C], np.zeros(N_VOCAB, np.float32))
    assert after[EOT] == 0.0 and after[Y] == -W.max_phrase


def test_word_tails_of_the_real_tokenizer(base_model):
    from dictation.app.decoding import load_tokenizer_and_rules
    from dictation.app.vocabulary.decoding_vocabulary import word_tail_mask

    tokenizer, _ = load_tokenizer_and_rules(base_model)
    mask = word_tail_mask(tokenizer)
    assert mask is not None

    def first(text: str) -> int:
        return tokenizer._tok.encode(text, add_special_tokens=False).ids[0]

    assert mask[first("ake")] and mask[first("ilar")]
    assert not any(mask[first(t)] for t in (" the", " Vexilar", ",", ".", "'s", "-"))
    assert word_tail_mask(WordTokenizer()) is None  # a tokenizer that cannot list its tokens


def test_a_phrase_inside_a_longer_one_is_not_paid_twice():
    bias = PhraseBias(PhraseTrie([[A, B], [A, B, C]]), BiasWeights(per_token=2.0, max_phrase=10.0))
    assert sum(bonus_along(bias, [A, B, C, Y])) == pytest.approx(6.0)  # A B C: 3 tokens
    assert sum(bonus_along(bias, [A, B, Y])) == pytest.approx(4.0)  # A B completed, kept


def test_overlapping_starts_and_restarts():
    bias = PhraseBias(PhraseTrie([[A, B, C]]), W)
    # A A B C: the first A is abandoned (given back), the second starts the phrase again.
    assert sum(bonus_along(bias, [A, A, B, C])) == pytest.approx(W.max_phrase)


def test_no_phrase_starts_where_the_model_ends_the_text():
    bias = PhraseBias(PhraseTrie([[A, B]]), W)
    row = np.full(N_VOCAB, -20.0, np.float32)
    row[EOT] = 0.0
    assert bias.adjust([X], row)[A] == -20.0
    row[EOT], row[X] = -1.0, 0.0
    assert bias.adjust([X], row)[A] == -18.0


def test_starts_only_within_the_window_of_the_best_token():
    bias = PhraseBias(PhraseTrie([[A, B]]), BiasWeights(2.0, 5.0, start_window=6.0))
    row = np.zeros(N_VOCAB, np.float32)
    row[A] = -7.0
    assert bias.adjust([], row)[A] == -7.0  # too unlikely to start on
    row[A] = -5.0
    assert bias.adjust([], row)[A] == -3.0


def test_masked_tokens_stay_impossible_and_an_empty_trie_changes_nothing():
    bias = PhraseBias(PhraseTrie([[A, B]]), W)
    row = np.zeros(N_VOCAB, np.float32)
    row[A] = -np.inf
    assert bias.adjust([], row)[A] == -np.inf
    empty = PhraseBias(PhraseTrie([]), W)
    assert empty.adjust([X], row) is row


def mishearing(prefix: list[int]) -> np.ndarray:
    """The model hears 'X' slightly likelier than the phrase A B C, then the text ends."""
    table = {
        (): {X: 0.6, A: 0.4},
        (A,): {B: 0.9, Y: 0.1},
        (A, B): {C: 0.9, Y: 0.1},
    }
    return distribution(table.get(tuple(prefix), {EOT: 0.95, Y: 0.05}))


@pytest.mark.parametrize("beam", [1, 4])
def test_the_bias_turns_a_near_miss_into_the_phrase_in_greedy_and_beam(beam):
    def decode(bias):
        if beam == 1:
            return greedy_decode(ScriptedDecoder(mishearing).greedy_step, NO_RULES, 3.0, bias=bias)
        return beam_decode(ScriptedDecoder(mishearing).beam_step, NO_RULES, 3.0, beam=beam, bias=bias)

    assert decode(None) == [X]
    assert decode(PhraseBias(PhraseTrie([[A, B, C]]), W)) == [A, B, C]
    assert decode(PhraseBias(PhraseTrie([]), W)) == [X]  # an empty vocabulary: same text


def test_the_bias_cannot_force_an_absent_phrase_over_clear_speech():
    def clear(prefix: list[int]) -> np.ndarray:
        table = {(): {X: 0.999, A: 0.001}, (A,): {B: 0.5, Y: 0.5}}
        return distribution(table.get(tuple(prefix), {EOT: 1.0}))

    bias = PhraseBias(PhraseTrie([[A, B, C]]), W)
    assert beam_decode(ScriptedDecoder(clear).beam_step, NO_RULES, 3.0, beam=4, bias=bias) == [X]


def test_beam_with_bias_keeps_the_suppression_rules():
    suppress = np.zeros(N_VOCAB, bool)
    suppress[A] = True
    rules = DecodingRules(suppress=suppress, suppress_begin=suppress.copy())
    bias = PhraseBias(PhraseTrie([[A, B, C]]), W)
    assert A not in beam_decode(ScriptedDecoder(mishearing).beam_step, rules, 3.0, beam=4, bias=bias)


# -- verification against the plain decoding ------------------------------------------


def test_merge_takes_one_phrase_where_the_model_was_unsure():
    from dictation.app.vocabulary.verify import merge

    plain = [("Daniel", -0.1), ("Buchanan.", -0.9), ("Thanks.", 0.0)]
    assert merge(plain, "Daniel Vukovich. Thanks.", ["Vukovich"]) == "Daniel Vukovich. Thanks."
    sure = [("working", 0.0), ("from", 0.0), ("home", -0.1)]
    assert merge(sure, "working from Thorsby", ["Thorsby"]) == "working from home"


def test_merge_refuses_what_a_bias_makes_up():
    from dictation.app.vocabulary.verify import merge

    plain = [("at", 0.0), ("7.30,", -1.9), ("so", -0.1), ("we", 0.0), ("meet", 0.0), ("there.", -0.2)]
    phrases = ["ondansetron", "Vukovich"]
    assert merge(plain, "at 7 ondansetron", phrases) == "at 7.30, so we meet there."  # cut short
    assert merge(plain, "at 7.30, so we meet there. Vukovich", phrases) == "at 7.30, so we meet there."  # added
    two = "at Vukovich ondansetron meet there."
    assert merge(plain, two, phrases) == "at 7.30, so we meet there."  # two phrases for two words


class CountingRun:
    """`run(bias)` for `DecodingVocabulary.decode`: scripted token lists, calls counted. The
    decoder is sure of the plain tokens (`sure`) or torn between them and the biased ones."""

    def __init__(self, plain: list[int], biased: list[int], sure: bool) -> None:
        self.plain, self.biased, self.sure = plain, biased, sure
        self.calls: list[object] = []

    def __call__(self, bias):
        self.calls.append(bias)
        if bias is not None:  # the recorder (or the bias) sees each row as a decoder shows it
            for i, token in enumerate(self.plain):
                row = np.full(N_VOCAB, -20.0, np.float32)
                row[token] = 0.0
                if not self.sure:
                    row[self.biased[i]] = 0.0
                bias.adjust(self.plain[:i], row)
        return self.biased if isinstance(bias, PhraseBias) else self.plain


class WordTokenizer:
    """Token i is the i-th word of a fixed list (a stand-in for Whisper's BPE)."""

    words = ["The", "lease", "Buchanan", "Vukovich"]

    def encode(self, text: str) -> list[int]:
        return [self.words.index(w) for w in text.split()]

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.words[i] for i in ids)


def test_decode_runs_plain_then_biased_and_keeps_the_plain_text_where_sure():
    vocabulary = DecodingVocabulary([make_entry("Vukovich")])
    unsure = CountingRun(plain=[0, 1, 2], biased=[0, 1, 3], sure=False)
    assert vocabulary.decode(unsure, WordTokenizer()) == ([0, 1, 3], "The lease Vukovich")
    assert len(unsure.calls) == 2 and not isinstance(unsure.calls[0], PhraseBias)  # plain first, recorded
    sure = CountingRun(plain=[0, 1, 2], biased=[0, 1, 3], sure=True)
    assert vocabulary.decode(sure, WordTokenizer()) == ([0, 1, 2], "The lease Buchanan")
    unverified = DecodingVocabulary([make_entry("Vukovich")], verify=False)
    assert unverified.decode(CountingRun([0, 1, 2], [0, 1, 3], True), WordTokenizer())[1] == "The lease Vukovich"
    once = CountingRun([0, 1, 2], [0, 1, 3], False)
    assert DecodingVocabulary([]).decode(once, WordTokenizer()) == ([0, 1, 2], "The lease Buchanan")
    assert once.calls == [None]  # no vocabulary: one plain pass


# -- phonetic repair ------------------------------------------------------------------


def test_sound_keys_of_sample_words():
    from dictation.app.vocabulary.phonetic import similarity_cost, sound_key

    assert sound_key("Przybylski") == "PRSAPALSKA"
    assert sound_key("Thorsby") == "0ARSPA"
    assert sound_key("Quorvane") == "KWARFAN"  # qu is KW, v is F, the final e is silent
    assert sound_key("Bill Ski") == sound_key("Bilski")  # words run together, as speech does
    assert sound_key("phone") == sound_key("fone") and sound_key("cent") == sound_key("sent")
    assert sound_key("") == "" and sound_key("7.30,") == ""
    assert similarity_cost(sound_key("a concho"), sound_key("Okonkwo")) < 0.25
    assert similarity_cost(sound_key("Perez of Bill Ski"), sound_key("Przybylski")) < 0.25
    assert similarity_cost(sound_key("town"), sound_key("Nguyen")) > 0.4
    assert similarity_cost(sound_key("garden"), sound_key("Okonkwo")) > 0.4


def test_the_key_table_gives_each_keys_cost_at_once():
    from dictation.app.vocabulary.phonetic import KeyTable, similarity_cost, sound_key

    keys = [sound_key(w) for w in ("Okonkwo", "Przybylski", "Nguyen", "ondansetron", "a")]
    table = KeyTable(keys)
    for text in ("a concho", "an insetran", "the", "Bill Ski", ""):
        expected = [similarity_cost(sound_key(text), k) for k in keys]
        assert table.costs(sound_key(text)).tolist() == pytest.approx(expected, abs=1e-12)
    assert KeyTable([]).costs("KA").size == 0


LUNCH = [("I", -0.01), ("had", -0.01), ("lunch", -0.02), ("with", -0.05), ("a", -0.3), ("concho", -1.6)]
LUNCH += [("and", -0.2), ("his", -0.01), ("sister.", -0.02)]


class Scores:
    """A decoder's log-probability of texts, for `PhoneticRepair`: `plain` for any text
    without `word`, `with_word` for one with it; the texts asked for are kept."""

    def __init__(self, word: str, with_word: float, plain: float = -5.0) -> None:
        self.word, self.with_word, self.plain, self.asked = word, with_word, plain, []

    def __call__(self, text: str) -> float:
        self.asked.append(text)
        return self.plain + self.with_word if self.word in text else self.plain


def test_repair_writes_an_unsure_sound_alike_as_the_phrase_if_the_decoder_agrees():
    from dictation.app.vocabulary.repair import MARGIN, PER_GROUP, PhoneticRepair

    repair = PhoneticRepair([make_entry("Okonkwo"), make_entry("Vukovich")])
    likely = Scores("Okonkwo", with_word=-(MARGIN - 5))
    assert repair(LUNCH, likely, -5.0) == "I had lunch with Okonkwo and his sister."
    assert likely.asked[0] == "I had lunch with Okonkwo and his sister."  # the closest first
    assert len(likely.asked) <= PER_GROUP and all("Okonkwo" in t for t in likely.asked)
    unlikely = Scores("Okonkwo", with_word=-(MARGIN + 5))  # the decoder finds it far less likely
    assert repair(LUNCH, unlikely, -5.0) == "I had lunch with a concho and his sister."
    assert repair([("concho,", -1.6), ("please", -0.1)], likely, None) == "Okonkwo, please"  # capital, comma
    sure = [(w, -0.1) for w, _ in LUNCH]  # the model was sure of every word: nothing is scored
    never = Scores("Okonkwo", with_word=0.0)
    assert repair(sure, never, -5.0) == "I had lunch with a concho and his sister." and never.asked == []


def test_repair_leaves_ordinary_words_that_merely_resemble_a_phrase():
    from dictation.app.vocabulary.repair import PhoneticRepair

    repair = PhoneticRepair([make_entry("Nguyen"), make_entry("Thorsby"), make_entry("Okonkwo")])
    words = [("in", -0.1), ("the", -0.2), ("garden", -2.0), ("again.", -1.5)]
    assert repair.candidates(words) == []  # unsure, but not like Okonkwo; Nguyen's key is too short
    thirsty = [("I", -0.01), ("am", -0.01), ("thirsty.", -0.3)]  # sounds like Thorsby, but sure
    assert repair.candidates(thirsty) == []
    unsure = [("I", -0.01), ("am", -0.01), ("thirsty.", -1.5)]
    assert [c.phrase for g in repair.candidates(unsure) for c in g] == ["Thorsby"]


def test_a_closer_sounding_phrase_contests_the_biased_one():
    from dictation.app.vocabulary.repair import PhoneticRepair

    repair = PhoneticRepair([make_entry("Kubernetes"), make_entry("Quorvane")])
    plain = [("The", -0.01), ("corvey", -1.9), ("update", -0.4), ("broke.", -0.01)]
    merged = [("The", -0.01), ("Kubernetes", 0.0), ("broke.", -0.01)]  # the bias's phrase for 2 words
    scores = Scores("Quorvane", with_word=-10.0)  # less likely than the biased text, within the margin
    words, logp = repair.contest(merged, [(1, 2, 1, 3)], plain, scores)
    assert " ".join(w for w, _ in words) == "The Quorvane update broke." and logp == -15.0
    kept, _ = repair.contest(merged, [(1, 2, 1, 3)], plain, Scores("Quorvane", with_word=-40.0))
    assert kept == merged
    near = [("The", -0.01), ("Cabernetes", -1.9), ("broke.", -0.01)]  # no closer rival: nothing scored
    none = Scores("Quorvane", 0.0)
    assert repair.contest(merged, [(1, 2, 1, 2)], near, none) == (merged, None) and none.asked == []


@pytest.mark.parametrize("beam", [1, 4])
def test_forced_score_follows_the_text_and_sums_its_log_probabilities(beam):
    from dictation.app.vocabulary.repair import ForcedScore

    def next_logits(prefix: list[int]) -> np.ndarray:
        return distribution({X: 0.7, A: 0.2, EOT: 0.1} if len(prefix) < 2 else {EOT: 0.9, Y: 0.1})

    forced = ForcedScore([A, X])
    decoder = ScriptedDecoder(next_logits)
    if beam == 1:
        tokens = greedy_decode(decoder.greedy_step, NO_RULES, 1.0, bias=forced)
    else:
        tokens = beam_decode(decoder.beam_step, NO_RULES, 1.0, beam=beam, bias=forced)
    assert tokens == [A, X]  # not the likelier X X
    assert forced.total == pytest.approx(np.log(0.2) + np.log(0.7) + np.log(0.9), abs=1e-5)
    cut = ForcedScore([A, X, A])
    greedy_decode(ScriptedDecoder(next_logits).greedy_step, NO_RULES, 1.0, bias=cut)  # A is impossible third
    assert cut.total is None


BENCHMARK_WORDS = """Kubernetes Nguyen Zyxel Thorsby Siobhan Przybylski Okonkwo Tlaxcala Vexilar Grafana
Lumetra Brivanta ondansetron Wojciechowski Oyelaran Achterberg Vukovich Skaneateles Kowalczyk Quorvane"""


def test_the_real_decoder_repairs_a_word_the_bias_misses(base_model, tmp_path):
    """flite's slt says Okonkwo; with the benchmark's twenty words the model writes "a
    concho" with or without the bias (`benchmarks/vocabulary.py`)."""
    from dictation.app.audio import load_audio
    from dictation.app.runtime import Transcriber

    audio = load_audio(tts_wav("I had lunch with Okonkwo and his sister at the market.", tmp_path / "o.wav", "flite"))
    transcriber = Transcriber(base_model, beam=4)
    entries = [make_entry(w) for w in BENCHMARK_WORDS.split()]
    transcriber.vocabulary = DecodingVocabulary(entries, repair=False)
    assert "Okonkwo" not in transcriber.transcribe(audio).text
    transcriber.vocabulary = DecodingVocabulary(entries)
    repaired = transcriber.transcribe(audio)
    assert "Okonkwo and his sister" in repaired.text
    assert transcriber.tokenizer.decode(repaired.tokens) == repaired.text


# -- written forms and the text file form ---------------------------------------------


def test_replacements_sounds_like_and_casing():
    rewrite = TextRewriter(
        [
            make_entry("em dash", replacement="\u2014"),
            make_entry("my address", replacement="12 Long Road\nCambridge"),
            make_entry("Nguyen", sounds_like="win"),
            make_entry("gRPC"),
            make_entry("kubectl"),
        ]
    )
    assert rewrite("Wait, em dash, no. Em-dash.") == "Wait, \u2014, no. \u2014."
    assert rewrite("Send it to my address please") == "Send it to 12 Long Road\nCambridge please"
    assert rewrite("Ask Doctor Win about the GRPC call.") == "Ask Doctor Nguyen about the gRPC call."
    assert rewrite("Kubectl runs. Twin peaks, winner, win's") == "Kubectl runs. Twin peaks, winner, win's"
    assert rewrite("") == "" and not TextRewriter([])


def test_text_form_round_trip_and_errors():
    text = "# mine\n\nKubernetes\nNguyen | win\nem dash | | \u2014\nmy address | | 12 Long Road\\nCambridge\n"
    entries = parse_text(text)
    assert [(e.phrase, e.sounds_like, e.replacement) for e in entries] == [
        ("Kubernetes", "", ""),
        ("Nguyen", "win", ""),
        ("em dash", "", "\u2014"),
        ("my address", "", "12 Long Road\nCambridge"),
    ]
    assert parse_text(format_text(entries)) == entries
    assert [e.phrase for e in parse_text("Zyx\nzyx  \n")] == ["zyx"]  # one per phrase, the later wins
    with pytest.raises(VocabularyError, match="line 2"):
        parse_text("fine\n | only a sound\n")
    with pytest.raises(VocabularyError):
        make_entry("!!!")


def test_store_keeps_the_profiles_word_list_readable(dictation_home):
    from dictation.app.profiles import Profile

    profile = Profile.create("ann")
    store = VocabularyStore(profile)
    store.add([make_entry("Kubernetes"), make_entry("em dash", replacement="\u2014")])
    store.add([make_entry("kubernetes", sounds_like="cooper nettys")])  # same phrase: replaced in place
    assert profile.vocabulary() == ["kubernetes", "em dash"]
    assert [(e.phrase, e.sounds_like, e.replacement) for e in VocabularyStore(Profile.open("ann")).entries()] == [
        ("kubernetes", "cooper nettys", ""),
        ("em dash", "", "\u2014"),
    ]
    profile.save_vocabulary(["em dash", "Zyx"])  # the older API writes the word list alone
    assert [(e.phrase, e.replacement) for e in store.entries()] == [("em dash", ""), ("Zyx", "")]
    assert store.remove(["EM  DASH", "nothing"]) == (["EM  DASH"], ["nothing"])
    assert [e.phrase for e in store.entries()] == ["Zyx"]


# -- the command line -----------------------------------------------------------------


def dictation(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, **(env or {}))
    environment["PYTHONPATH"] = os.pathsep.join([str(REPO), environment.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "dictation", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        cwd=REPO,
    )


def test_cli_add_remove_list_one_argument_per_phrase(dictation_home, tmp_path):
    from dictation.app.profiles import Profile

    Profile.create("ann")
    added = dictation("vocabulary", "add", "--profile", "ann", "Kubernetes", "Siobhan Nguyen", "Grafana")
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines() == ["added: Kubernetes", "added: Siobhan Nguyen", "added: Grafana"]
    listed = dictation("vocabulary", "list", "--profile", "ann")
    assert listed.stdout.splitlines() == ["Kubernetes", "Siobhan Nguyen", "Grafana"]

    removed = dictation("vocabulary", "remove", "--profile", "ann", "siobhan nguyen", "Zed")
    assert removed.returncode == 1 and removed.stdout.splitlines() == ["removed: siobhan nguyen"]
    assert "not in the vocabulary of 'ann': Zed" in removed.stderr

    with_details = dictation("vocabulary", "add", "--profile", "ann", "em dash", "--replace-with", "\u2014")
    assert with_details.returncode == 0, with_details.stderr
    refused = dictation("vocabulary", "add", "--profile", "ann", "a", "b", "--sounds-like", "c")
    assert refused.returncode == 2 and "one PHRASE" in refused.stderr
    records = json.loads(dictation("vocabulary", "list", "--profile", "ann", "--json").stdout)
    assert records == [
        {"phrase": "Kubernetes", "sounds_like": "", "replacement": ""},
        {"phrase": "Grafana", "sounds_like": "", "replacement": ""},
        {"phrase": "em dash", "sounds_like": "", "replacement": "\u2014"},
    ]

    exported = tmp_path / "words.txt"
    assert dictation("vocabulary", "export", "--profile", "ann", str(exported)).returncode == 0
    Profile.create("bob")
    imported = dictation("vocabulary", "import", "--profile", "bob", str(exported))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(dictation("vocabulary", "list", "--profile", "bob", "--json").stdout) == records
    missing = dictation("vocabulary", "list", "--profile", "nobody")
    assert missing.returncode == 1 and "no profile named 'nobody'" in missing.stderr


# -- the real model -------------------------------------------------------------------

MADE_UP = "Vukovich"  # not a word the model spells without help (benchmarks/vocabulary.py)
SENTENCE = "The lease is in the name of Daniel Vukovich."


def test_an_empty_vocabulary_leaves_the_real_decoder_unchanged(base_model, tmp_path):

    from dictation.app.audio import load_audio
    from dictation.app.runtime import Transcriber

    audio = load_audio(tts_wav(SENTENCE, tmp_path / "s.wav", "flite", "slt"))
    transcriber = Transcriber(base_model, beam=4)
    plain = transcriber.transcribe(audio)
    transcriber.vocabulary = DecodingVocabulary([])
    assert transcriber.transcribe(audio).tokens == plain.tokens
    transcriber.vocabulary = DecodingVocabulary([make_entry("Zyxwvut")], mode="bias")
    unrelated = transcriber.transcribe(audio, beam=1)
    transcriber.vocabulary = None
    assert unrelated.text == transcriber.transcribe(audio, beam=1).text


def test_transcribe_with_a_profile_uses_its_vocabulary(base_model, shared_model_cache, dictation_home, tmp_path):

    from dictation.app.profiles import Profile

    wav = tts_wav(SENTENCE, tmp_path / "lease.wav", "espeak", "en-us")
    Profile.create("ann")
    env = {"DICTATION_CACHE": str(shared_model_cache)}
    before = dictation("transcribe", "--profile", "ann", str(wav), env=env)
    assert before.returncode == 0, before.stderr
    assert MADE_UP not in before.stdout
    added = dictation("vocabulary", "add", "--profile", "ann", MADE_UP, "em dash", "--replace-with", "-", env=env)
    assert added.returncode == 2  # the replacement needs a single phrase
    assert dictation("vocabulary", "add", "--profile", "ann", MADE_UP, env=env).returncode == 0
    after = dictation("transcribe", "--profile", "ann", "--json", str(wav), env=env)
    assert after.returncode == 0, after.stderr
    text = json.loads(after.stdout)["text"]
    assert MADE_UP in text
    assert text.replace(MADE_UP, "").split()[:4] == before.stdout.split()[:4]  # the rest as before


# -- the page -------------------------------------------------------------------------


def test_vocabulary_page_add_remove_import_export(qtbot, dictation_home, tmp_path):
    from dictation.app.gui.vocabulary_page import VocabularyPage
    from dictation.app.profiles import Profile

    profile = Profile.create("ann")
    page = VocabularyPage()
    qtbot.addWidget(page)
    assert not page.add_button.isEnabled()
    page.set_profile(profile)
    assert page.add_button.isEnabled() and page.table.rowCount() == 0

    page.phrase_edit.setText("Siobhan Nguyen")
    page.sounds_edit.setText("shiv on win")
    with qtbot.waitSignal(page.changed) as signal:
        page.add_button.click()
    assert [e.phrase for e in signal.args[0]] == ["Siobhan Nguyen"]
    assert page.phrase_edit.text() == "" and page.table.item(0, 1).text() == "shiv on win"
    page.phrase_edit.setText("|")
    assert not page.add_from_fields() and page.status.objectName() == "bad"

    source = tmp_path / "in.txt"
    source.write_text("Kubernetes\nem dash | | \u2014\n", encoding="utf-8")
    assert page.import_file(source)
    assert [page.table.item(r, 0).text() for r in range(page.table.rowCount())] == [
        "Siobhan Nguyen",
        "Kubernetes",
        "em dash",
    ]
    page.table.selectRow(1)
    with qtbot.waitSignal(page.changed):
        assert page.remove_selected()
    assert profile.vocabulary() == ["Siobhan Nguyen", "em dash"]

    out = tmp_path / "out.txt"
    assert page.export_file(out)
    assert parse_text(out.read_text(encoding="utf-8")) == VocabularyStore(profile).entries()
    bad = tmp_path / "bad.txt"
    bad.write_text("ok\n | x\n", encoding="utf-8")
    assert not page.import_file(bad) and "line 2" in page.status.text()


def test_the_window_has_the_page_and_dictates_with_the_profiles_words(
    qtbot, base_model, shared_model_cache, dictation_home, monkeypatch
):
    from dictation.app.gui.main_window import MainWindow
    from dictation.app.gui.profile_pages import PAGE_VOCABULARY
    from dictation.app.gui.services import Services
    from dictation.app.profiles import Profile

    monkeypatch.setenv("DICTATION_CACHE", str(shared_model_cache))
    VocabularyStore(Profile.create("ann")).add([make_entry("Vukovich")])
    window = MainWindow(services=Services(list_microphones=lambda: []))
    qtbot.addWidget(window)
    try:
        window.open_profile("ann")
        assert window.profile_pages.nav.item(PAGE_VOCABULARY).text() == "Vocabulary"
        window.show_page(PAGE_VOCABULARY)
        assert window.pages.currentWidget() is window.vocabulary_page
        assert window.vocabulary_page.table.item(0, 0).text() == "Vukovich"
        assert [e.phrase for e in window.transcription._vocabulary.entries] == ["Vukovich"]
        window.vocabulary_page.phrase_edit.setText("Skaneateles")
        window.vocabulary_page.add_button.click()
        assert [e.phrase for e in window.transcription._vocabulary.entries] == ["Vukovich", "Skaneateles"]
        window.vocabulary_page.table.selectAll()
        window.vocabulary_page.remove_selected()
        assert window.transcription._vocabulary is None  # no words: decoding exactly as without
    finally:
        window.close()
        window.transcription.wait(30_000)
