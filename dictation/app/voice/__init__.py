"""The voice embedding in the app (onnxruntime only, no torch): whose voice a take is.

`VoiceEmbedder(model_dir)` runs the base export's `voice.onnx` (written when the bundle
has a voice space); `store` keeps each profile's voice prototype (`voice.npz`, the
embeddings of its enrollment takes). Without `voice.onnx` the embedder says it is not
`available` and every use of it is skipped: the app behaves as without a voice space.
"""

from dictation.app.voice.embedder import VoiceEmbedder, prototype, similarity
from dictation.app.voice.store import VOICE_FILE, ProfileVoice, read_prototype, update_profile_voice

__all__ = [
    "VOICE_FILE",
    "ProfileVoice",
    "VoiceEmbedder",
    "prototype",
    "read_prototype",
    "similarity",
    "update_profile_voice",
]
