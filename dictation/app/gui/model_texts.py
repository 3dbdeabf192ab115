"""What the window says about the profile's speech model: the model in use, the
adapt-again notice and the About box."""

from __future__ import annotations

from html import escape
from pathlib import Path

from dictation import __version__
from dictation.app import storage
from dictation.app.base_model import bundled_model_version
from dictation.app.learning_curve import NOT_MEASURED, CurveError, fewer_errors, load_learning_curve, relative_gain
from dictation.app.logs import log_dir
from dictation.app.profiles import Profile, ProfileError
from dictation.app.runtime import ModelMissingError


def model_in_use(profile: Profile | None, loaded_kind: str | None = None) -> str:
    """E.g. "adapted to your voice (10 takes) on 2025-01-02 10:30", "voice-space start (no
    enrollment yet)" (the zero-step start placed from the first dictations,
    `dictation.adapt.placement`) or "base model (not adapted yet)". `loaded_kind`: the
    model really loaded ("adapted", "previous", "base"; None: not known yet); an adapted
    model that could not be loaded is not said to be in use."""
    if profile is None or profile.model_dir() is None:
        return "base model (not adapted yet)"
    if loaded_kind == "base":
        return "base model (your adapted model could not be loaded)"
    if loaded_kind == "previous":
        return "your previous adapted model (the newest could not be loaded)"
    try:
        meta = profile.metadata
    except ProfileError:
        return "adapted model (its details are unreadable)"
    if meta.get("zero_step"):
        return "voice-space start (no enrollment yet)"
    when = str(meta.get("created") or meta.get("date") or "")[:16].replace("T", " ")
    return f"adapted to your voice{_material(meta)}{' on ' + when if when else ''}"


def _material(meta: dict) -> str:
    """What an adaptation learned from, as its metadata records it, e.g. " (10 takes + 4
    dictations, from the voice space)"; "" for models that do not say."""
    try:
        takes = int(meta["train_takes"])
        dictations = int(meta.get("corrections") or 0) + int(meta.get("learned") or 0)
    except (KeyError, TypeError, ValueError):
        return ""
    parts = f"{takes} take{'s' if takes != 1 else ''}"
    if dictations:
        parts += f" + {dictations} dictation{'s' if dictations != 1 else ''}"
    if meta.get("voice_space"):
        parts += ", from the voice space"
    return f" ({parts})"


def outdated_model_notice(profile: Profile | None) -> str:
    """A sentence asking to adapt again when the profile's adapted model was made from an
    older bundled speech model than this installation ships; "" otherwise."""
    if profile is None:
        return ""
    try:
        shipped = bundled_model_version()
        old = profile.outdated_model(shipped)
    except (ProfileError, ModelMissingError, OSError):
        return ""
    if old is None:
        return ""
    return (
        f"Your adapted model was made from speech model {old}; this version of Dictation "
        f"ships {shipped}. Adapt again to build on the new model: your "
        "recordings are kept, and the current model stays in use until the new one has "
        "passed its check."
    )


def about_html(profile: Profile | None, bundle_dir: Path | None = None) -> str:
    """The About box: version, speech models, the model's measured learning curve (of
    `bundle_dir`, default the bundled model), where the data and the logs are."""
    model = "base model"
    if profile is not None and profile.model_dir() is not None:
        try:
            made_from = profile.adapted_from()
        except ProfileError:
            made_from = None
        model = f"adapted model (made from {made_from})" if made_from else "adapted model"
    try:
        base = bundled_model_version()
    except (ModelMissingError, OSError):
        base = "not installed"
    return (
        f"<h3>Dictation {__version__}</h3>"
        "<p>Desktop dictation that learns your voice on your own computer.</p>"
        f"<p>Speech model: {base} (Whisper tiny.en based); in use: {model}.</p>"
        f"{_curve_html(bundle_dir, base)}"
        f"<p>Your data (profiles, recordings, models) lives in:<br><code>"
        f"{storage.data_root()}</code></p>"
        f"<p>Logs: <code>{log_dir()}</code></p>"
        "<p>Nothing you say leaves this computer.</p>"
    )


def _curve_html(bundle_dir: Path | None, shipped: str) -> str:
    """The learning curve in one paragraph for the About box (the plot is on the "What I
    learned" page)."""
    try:
        curve = load_learning_curve(bundle_dir)
    except CurveError:
        return "<p>Learning curve: its file is damaged and cannot be shown.</p>"
    if curve is None:
        return f"<p>{NOT_MEASURED}</p>"
    steps = []
    for p in curve.points:
        gain = relative_gain(p.base_wer, p.maml_wer)
        change = "" if gain is None else f", {fewer_errors(gain)}"
        steps.append(f"{p.takes} takes: {p.base_wer:.1%} \u2192 {p.maml_wer:.1%}{change}")
    other = "" if curve.model_version == shipped else f" (measured on speech model {escape(curve.model_version)})"
    return (
        f"<p>Measured learning curve{other}, word error rate before \u2192 after adapting, on "
        f"{curve.speakers} held-out speakers: {'; '.join(steps)}. "
        "The plot is on the \u201cWhat I learned\u201d page.</p>"
    )
