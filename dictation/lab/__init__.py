"""The lab: what builds and measures the bundled model.

Corpus building, meta-training, held-out evaluation and comparisons. It may import
the adapting layer (`dictation.adapt`) and the dictating layer (`dictation.app`); the
product never imports the lab.
"""
