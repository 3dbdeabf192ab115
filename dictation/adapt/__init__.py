"""The adapting layer: the torch model, log-mel features, the inner loop, export to
ONNX behind a parity gate, and the worker process that adapts a profile.

It imports the dictating layer (``dictation.app``) and never the lab. The app starts
the worker by module name (``dictation.app.adapt_job``), so the dictating process
itself never imports this package or torch.
"""
