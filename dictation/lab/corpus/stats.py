"""Corpus statistics: speakers, utterances and hours, in total, per split and per source."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from dictation.lab.corpus.readers import read_manifest
from dictation.lab.corpus.splits import SPLITS, split_of


def _bucket() -> dict:
    return {"speakers": set(), "utterances": 0, "seconds": 0.0}


def corpus_stats(corpus_dir: Path) -> dict:
    """{speakers, utterances, hours, min_utterances_per_speaker, splits: {...}, sources: {...}}."""
    total = _bucket()
    splits = {s: _bucket() for s in SPLITS}
    sources: dict[str, dict] = defaultdict(_bucket)
    per_speaker: dict[str, int] = defaultdict(int)
    for u in read_manifest(Path(corpus_dir)):
        seconds = float(u.duration or 0.0)
        per_speaker[u.speaker] += 1
        for b in (total, splits[split_of(u.speaker)], sources[u.source]):
            b["speakers"].add(u.speaker)
            b["utterances"] += 1
            b["seconds"] += seconds

    def fmt(b: dict) -> dict:
        return {"speakers": len(b["speakers"]), "utterances": b["utterances"], "hours": round(b["seconds"] / 3600, 3)}

    out = fmt(total)
    out["min_utterances_per_speaker"] = min(per_speaker.values(), default=0)
    out["speakers_with_40_utterances"] = sum(1 for n in per_speaker.values() if n >= 40)
    out["splits"] = {s: fmt(b) for s, b in splits.items()}
    out["sources"] = {s: fmt(b) for s, b in sorted(sources.items())}
    return out


def format_stats(stats: dict) -> str:
    lines = [
        f"{stats['speakers']} speakers, {stats['utterances']} utterances, {stats['hours']:.2f} h "
        f"({stats['speakers_with_40_utterances']} speakers with >= 40 utterances)",
        f"{'':<12}{'speakers':>10}{'utterances':>12}{'hours':>9}",
    ]
    for title, group in (("split", stats["splits"]), ("source", stats["sources"])):
        lines.append(f"by {title}:")
        for name, b in group.items():
            lines.append(f"  {name:<10}{b['speakers']:>10}{b['utterances']:>12}{b['hours']:>9.2f}")
    return "\n".join(lines)
