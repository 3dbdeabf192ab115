"""Speech corpus: a speaker-indexed cache built offline, readers, splits, augmentation.

A meta-learning task is a speaker, so everything here is indexed by speaker id.
`build` synthesizes/decodes audio into a cache dir with a `manifest.jsonl`;
`readers` reads that manifest and corpora users already have; `splits` assigns
speakers to meta-train / meta-validation / test; `augment` perturbs audio at
training time (never baked into the cache).
"""
