"""Adaptation runs in a spawned worker process; the GUI and CLI drive it with AdaptationJob.

Importing this package (or ``job``) never imports torch: only the worker process does.
"""

from dictation.adapt.job import AdaptationJob

__all__ = ["AdaptationJob"]
