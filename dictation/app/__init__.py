"""The dictating layer: what runs while the user dictates.

GUI, desktop integration, audio capture, the onnxruntime runtime, decoding, text,
profiles and storage. It imports no other layer of the package and never torch
(a contract checked by `lint-imports` and tests/test_layers.py).
"""
