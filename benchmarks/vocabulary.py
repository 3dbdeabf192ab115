"""Does a profile's vocabulary fix the words the model gets wrong, and at what cost?

`python benchmarks/vocabulary.py [--set main|heldout] [--beam 4] [--modes off,bias,prompt,both]
[--voices ...] [--per-token 2.0] [--max-phrase 6.0] [--unsure -0.5] [--no-word-end]
[--no-repair] [--max-cost 0.35] [--margin 25] [--repair-unsure -0.5] [--real 0] [--real-offset 0] [--json]`

`--set heldout` (benchmarks/vocabulary_heldout.py): twenty other words and sentences, kept
out of tuning, to check that a constant chosen on the main set holds.

Twenty rare words (surnames, places, product names, drug and tech jargon; each one the
base model misspells without help: checked with espeak-ng and flite before they were
chosen) are spoken in a sentence each by several synthetic voices (espeak-ng and flite,
the project's own TTS), and twenty ordinary sentences by the same voices. All twenty
words are the vocabulary. For each way of using it (`off`: none; `bias`: the token
trie's bonus in the beam search, then the phonetic repair unless `--no-repair`; `prompt`:
the words in Whisper's previous-text prompt; `both`) it prints the share of vocabulary
words written exactly right (whole word, any case) and the WER of the ordinary
sentences, with the relative change against `off`.
The model is the bundled one's ONNX export, as the app runs it. `--real N` adds N real
recorded lines (the corpus's FOTAQ voice acting, without the set's words): their WER
and how many lines the vocabulary changed. The lines are spread over the corpus as it
is now: a corpus that has grown since gives other lines.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (word, a sentence with it)
WORDS = [
    ("Kubernetes", "We moved the billing service to Kubernetes last spring."),
    ("Nguyen", "Please ask Doctor Nguyen to sign the discharge form."),
    ("Zyxel", "The old Zyxel router in the hallway keeps dropping the connection."),
    ("Thorsby", "Our new neighbour is a retired pilot called Thorsby."),
    ("Siobhan", "Siobhan will bring the slides to the meeting on Monday."),
    ("Przybylski", "The contract was signed by Mister Przybylski this morning."),
    ("Okonkwo", "I had lunch with Okonkwo and his sister at the market."),
    ("Tlaxcala", "Her family comes from a small town near Tlaxcala."),
    ("Vexilar", "He bought a Vexilar fish finder for the trip to the lake."),
    ("Grafana", "The latency graphs are on the Grafana dashboard now."),
    ("Lumetra", "The Lumetra lamp in the living room has a broken switch."),
    ("Brivanta", "Brivanta shipped the replacement parts on Tuesday."),
    ("ondansetron", "The nurse gave him ondansetron for the nausea."),
    ("Wojciechowski", "The next speaker is Professor Wojciechowski from Warsaw."),
    ("Oyelaran", "Send the invoice to Oyelaran before the end of the week."),
    ("Achterberg", "Achterberg scored twice in the second half."),
    ("Vukovich", "The lease is in the name of Daniel Vukovich."),
    ("Skaneateles", "We rented a cabin on the shore of Skaneateles for the summer."),
    ("Kowalczyk", "Kowalczyk has the keys to the storage room."),
    ("Quorvane", "The Quorvane update broke the printer drivers again."),
]

OTHER_SENTENCES = [
    "Please send the quarterly report to Maria before Friday afternoon.",
    "The meeting has been moved to the second floor conference room.",
    "Remember to buy milk, eggs and bread on the way home tonight.",
    "Our train leaves at seven thirty, so we should meet at the station.",
    "I think the new design is cleaner, but the colours need more contrast.",
    "Could you book a table for four people at the Italian place on Main Street?",
    "The children spent the whole afternoon building a fort in the garden.",
    "My phone battery dies much faster since the last update.",
    "We should paint the kitchen before the new furniture arrives.",
    "The doctor said I need to drink more water and sleep longer.",
    "Traffic on the bridge was terrible, so I took the long way round.",
    "She finished the crossword puzzle in less than ten minutes.",
    "The library closes early on Sundays during the winter.",
    "Can you remind me to call the bank tomorrow morning?",
    "The weather forecast says it will rain for most of the week.",
    "He left his umbrella on the bus again this morning.",
    "We need three more volunteers for the charity run in June.",
    "The coffee machine on the third floor is out of order.",
    "I will be working from home on Thursday and Friday.",
    "Thank you for your patience while we fix the problem.",
]

from vocabulary_heldout import HELDOUT_OTHER_SENTENCES, HELDOUT_WORDS  # noqa: E402

SETS = {"main": (WORDS, OTHER_SENTENCES), "heldout": (HELDOUT_WORDS, HELDOUT_OTHER_SENTENCES)}

VOICES = ["espeak:en-us", "espeak:en-gb", "flite:slt", "flite:awb"]


def synthesize(text: str, voice: str, path: Path) -> Path:
    engine, name = voice.split(":", 1)
    if engine == "espeak":
        cmd = ["espeak-ng", "-v", name, "-w", str(path), text]
    elif engine == "flite":
        cmd = ["flite", "-voice", name, "-t", text, "-o", str(path)]
    else:
        raise SystemExit(f"unknown voice {voice!r} (espeak:NAME or flite:NAME)")
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def real_lines(n: int, words: list[str], offset: int = 0) -> list[tuple[str, str, Path]]:
    """(speaker, text, audio) of `n` real recorded lines without any of `words`, spread over
    the corpus's FOTAQ voice acting (`dictation corpus build`); none without that corpus."""
    from dictation.app.storage import cache_root

    manifest = cache_root() / "corpus" / "manifest.jsonl"
    if n <= 0 or not manifest.is_file():
        return []
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows = sorted(
        (r for r in rows if r.get("source") == "fotaq" and len(r["text"].split()) >= 3), key=lambda r: r["audio"]
    )
    picked = rows[offset :: max(1, len(rows) // n)][:n]  # another offset: other lines
    return [(r["speaker"], r["text"], manifest.parent / r["audio"]) for r in picked]


def has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w']){re.escape(word)}(?![\w'])", text, re.IGNORECASE) is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--modes", default="off,bias,prompt,both")
    parser.add_argument("--voices", default=",".join(VOICES))
    parser.add_argument("--per-token", type=float, default=None, help="bias weight (default: BiasWeights)")
    parser.add_argument("--max-phrase", type=float, default=None)
    parser.add_argument("--first-token", type=float, default=None)
    parser.add_argument("--start-window", type=float, default=None)
    parser.add_argument("--no-word-end", action="store_true", help="A/B: no word boundary after a phrase")
    parser.add_argument("--no-verify", action="store_true", help="keep the biased text unverified")
    parser.add_argument("--unsure", type=float, default=None, help="merge's unsure threshold (default: UNSURE_LOGP)")
    parser.add_argument("--no-repair", action="store_true", help="A/B: no phonetic repair after decoding")
    parser.add_argument("--max-cost", type=float, default=None, help="repair's sound-key cost (default: MAX_COST)")
    parser.add_argument("--margin", type=float, default=None, help="repair's log-prob margin (default: MARGIN)")
    parser.add_argument("--repair-unsure", type=float, default=None, help="repair's unsure word (UNSURE_WORD_LOGP)")
    parser.add_argument("--real", type=int, default=0, help="also N real recorded lines (corpus FOTAQ), for WER")
    parser.add_argument("--real-offset", type=int, default=0, help="which of the spread lines (0: the first)")
    parser.add_argument("--set", choices=sorted(SETS), default="main", help="word set (heldout: not tuned on)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--show", action="store_true", help="print every transcript")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from dictation.app.audio import load_audio
    from dictation.app.base_model import base_model_dir
    from dictation.app.runtime import Transcriber
    from dictation.app.text import wer
    from dictation.app.vocabulary import BiasWeights, DecodingVocabulary, make_entry
    from dictation.app.vocabulary.repair import MARGIN, MAX_COST, UNSURE_WORD_LOGP, PhoneticRepair
    from dictation.app.vocabulary.verify import UNSURE_LOGP

    weights = BiasWeights()
    weights = BiasWeights(
        args.per_token if args.per_token is not None else weights.per_token,
        args.max_phrase if args.max_phrase is not None else weights.max_phrase,
        args.first_token if args.first_token is not None else weights.first_token,
        args.start_window if args.start_window is not None else weights.start_window,
    )
    voices, modes = args.voices.split(","), args.modes.split(",")
    transcriber = Transcriber(base_model_dir(), threads=args.threads, beam=args.beam)
    if args.no_word_end:  # the bias as before the word-boundary rule, for comparison
        import dictation.app.vocabulary.decoding_vocabulary as decoding_vocabulary

        decoding_vocabulary.word_tail_mask = lambda tokenizer: None
    words, others = SETS[args.set]
    unsure = UNSURE_LOGP if args.unsure is None else args.unsure
    entries = [make_entry(word) for word, _ in words]
    repair = (
        False
        if args.no_repair
        else PhoneticRepair(
            entries,
            MAX_COST if args.max_cost is None else args.max_cost,
            UNSURE_WORD_LOGP if args.repair_unsure is None else args.repair_unsure,
            MARGIN if args.margin is None else args.margin,
        )
    )
    tmp = Path(tempfile.mkdtemp(prefix="dictation-vocab-bench-"))
    clips = []  # (kind, word or None, reference, voice, audio)
    for kind, items in (("word", words), ("other", [(None, s) for s in others])):
        for i, (word, sentence) in enumerate(items):
            for voice in voices:
                wav = synthesize(sentence, voice, tmp / f"{kind}{i}-{voice.replace(':', '-')}.wav")
                clips.append((kind, word, sentence, voice, load_audio(wav)))
    for speaker, text, path in real_lines(args.real, [w for w, _ in words], args.real_offset):
        clips.append(("real", None, text, f"fotaq:{speaker}", load_audio(path)))
    real_off: list[str] = []

    results: dict[str, dict] = {}
    for mode in modes:
        transcriber.vocabulary = (
            None
            if mode == "off"
            else DecodingVocabulary(entries, mode, weights, verify=not args.no_verify, unsure=unsure, repair=repair)
        )
        right, refs, hyps, seconds = 0, [], [], 0.0
        real_refs, real_hyps = [], []
        per_voice: dict[str, list[int]] = {v: [0, 0] for v in voices}
        for kind, word, sentence, voice, audio in clips:
            t0 = time.perf_counter()
            text = transcriber.transcribe(audio).text
            seconds += time.perf_counter() - t0
            if args.show:
                print(f"[{mode}] {voice:12s} {text}", file=sys.stderr)
                for c, delta in repair.last if repair and mode != "off" else []:
                    print(
                        f"    repair {c.phrase} {c.start} {c.end} {c.cost:.3f} {c.doubt:.3f} {delta}", file=sys.stderr
                    )
            if kind == "word":
                ok = has_word(text, str(word))
                right += ok
                per_voice[voice][0] += ok
                per_voice[voice][1] += 1
            elif kind == "real":
                real_refs.append(sentence)
                real_hyps.append(text)
            else:
                refs.append(sentence)
                hyps.append(text)
        if mode == "off":
            real_off = real_hyps
        n_words = sum(1 for c in clips if c[0] == "word")
        results[mode] = {
            "word_accuracy": right / n_words,
            "words_right": right,
            "words": n_words,
            "other_wer": wer(refs, hyps),
            "ms_per_clip": 1000 * seconds / len(clips),
            "per_voice": {v: f"{a}/{b}" for v, (a, b) in per_voice.items()},
        }
        if real_refs:
            results[mode]["real_wer"] = wer(real_refs, real_hyps)
            results[mode]["real_lines"] = len(real_refs)
            results[mode]["real_changed"] = sum(a != b for a, b in zip(real_off, real_hyps)) if real_off else None
    base_wer = results.get("off", {}).get("other_wer")
    for r in results.values():
        r["other_wer_relative_change"] = (r["other_wer"] - base_wer) / base_wer if base_wer else None
    summary = {
        "beam": args.beam,
        "voices": voices,
        "weights": {"per_token": weights.per_token, "max_phrase": weights.max_phrase},
        "verified": not args.no_verify,
        "modes": results,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"beam {args.beam}, voices {', '.join(voices)}, bias {weights.per_token}/token max {weights.max_phrase}"
        f" first {weights.first_token} window {weights.start_window}, {'' if not args.no_verify else 'not '}verified"
    )
    print(f"{'mode':8s} {'vocab words right':>18s} {'WER other':>10s} {'rel. change':>12s} {'ms/clip':>8s}")
    for mode, r in results.items():
        change = r["other_wer_relative_change"]
        rel = f"{100 * change:+.1f} %" if change is not None else "-"
        right_text = f"{r['words_right']}/{r['words']} {100 * r['word_accuracy']:.0f} %"
        print(f"{mode:8s} {right_text:>18s} {100 * r['other_wer']:9.2f}% {rel:>12s} {r['ms_per_clip']:8.0f}")
        print(f"{'':8s} per voice: {r['per_voice']}")
        if "real_wer" in r:
            changed = "" if r["real_changed"] is None else f", {r['real_changed']} changed from off"
            print(f"{'':8s} {r['real_lines']} real recorded lines: WER {100 * r['real_wer']:.2f} %{changed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
