"""Per-user profiles: takes, the adapted model, history, corrections, settings.

Layout of ``data_root()/profiles/<name>/`` (format_version 1)::

    profile.json          {"format_version": 1, "name": ..., "created": ..., "id": ...}
    settings.json         free-form dict (mic, device, auto_copy, hotkey, commands)
    vocabulary.json       {"words": [...]}
    takes/<id>.wav        16 kHz mono PCM-16, 0600
    takes/<id>.json       {"id", "prompt_id", "text", "quality", "created"}
    corrections/<id>.*    same, plus "hypothesis" (what the recogniser wrote)
    history.jsonl         one {"time", "text"} per line, append-only
    model/                installed adapted ONNX model + metadata.json
    model.prev/           the previously installed model (last good)
    model.candidate/      the last adapted model its check kept aside (not used)
    pending/<id>.wav      audio of dictations whose text was not delivered yet
    learned/<id>.*        dictations accepted unchanged, kept for adaptation (like takes)
    learning.json         {"runs": [...]}: the background adaptation runs
    voice.npz             voice embeddings of the takes (`dictation.app.voice.store`; a cache, not exported)
    takes.unreadable/     unreadable takes moved aside by `profile check --repair`
    *.damaged-<time>.*    damaged settings/vocabulary set aside (never deleted)
    .stage-<pid>-<hex>/   staging dirs of running or dead adaptation workers
    .trash-<hex>/         directories being deleted

Nothing the user says is lost: one damaged file never refuses the whole profile
(unreadable takes are left out and reported, damaged settings are set aside and the
defaults used), writes to a profile deleted by another process fail instead of
re-creating it, and imports trust nothing in the archive. No torch and no Qt here:
the GUI and the dictation path import it.

Modules: `profile` (the `Profile` facade), `takes`, `model`, `history`, `settings`,
`pending`, `learned`, `archive`, `check` (find and repair unreadable files), `validate` (file
checks), `root` (the folder of all profiles), `files` (layout, write guard), `errors`.
"""

from __future__ import annotations

import os  # noqa: F401  (tests patch `profiles.os.replace`)

from dictation.app import storage  # noqa: F401  (tests patch `profiles.storage.*`)
from dictation.app.audio.constants import SAMPLE_RATE
from dictation.app.profiles.archive import MAX_ARCHIVE_BYTES, MAX_COMPRESSION_RATIO
from dictation.app.profiles.check import find_problems, repair
from dictation.app.profiles.errors import (
    CorruptProfileError,
    ProfileDeletedError,
    ProfileError,
    ProfileExistsError,
    ProfileNotFoundError,
    UnreadableFile,
)
from dictation.app.profiles.files import FORMAT_VERSION
from dictation.app.profiles.pending import PendingDictation, PendingDictations
from dictation.app.profiles.profile import Profile
from dictation.app.profiles.root import MAX_NAME_LENGTH, delete_profile, list_profiles, profiles_root, validate_name
from dictation.app.profiles.takes import Take

__all__ = [
    "FORMAT_VERSION",
    "MAX_ARCHIVE_BYTES",
    "MAX_COMPRESSION_RATIO",
    "MAX_NAME_LENGTH",
    "SAMPLE_RATE",
    "CorruptProfileError",
    "PendingDictation",
    "PendingDictations",
    "Profile",
    "ProfileDeletedError",
    "ProfileError",
    "ProfileExistsError",
    "ProfileNotFoundError",
    "Take",
    "UnreadableFile",
    "delete_profile",
    "find_problems",
    "list_profiles",
    "profiles_root",
    "repair",
    "validate_name",
]
