"""The audio format the whole app works in, defined once.

Everything past capture and file reading is 16 kHz mono float32 in [-1, 1]; the model,
the runtime, profiles and the corpus builder import SAMPLE_RATE from here.
"""

from __future__ import annotations

SAMPLE_RATE = 16000
DBFS_FLOOR = -120.0  # what silence reads as, so values stay finite (JSON-friendly)
