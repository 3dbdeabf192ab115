"""dictation: desktop dictation that adapts its speech model to its user, on-device."""

__version__ = "0.1.0"
