"""The layer rule, checked at run time: no module of the dictating layer imports torch.

import-linter checks the static imports (pyproject.toml); this imports every module of
`dictation.app` in a fresh interpreter, so a torch pulled in through a third-party
package or an import made at run time fails here too.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import dictation.app

HEAVY = ("torch", "torchaudio", "onnx", "faster_whisper", "ctranslate2")


def dictating_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(dictation.app.__path__, prefix="dictation.app."))


def test_the_dictating_layer_has_modules_to_check() -> None:
    names = dictating_modules()
    # The walk must reach into the subpackages, or the next test checks nothing.
    assert "dictation.app.runtime" in names
    assert any(name.startswith("dictation.app.gui.") for name in names)


def test_no_dictating_module_imports_torch() -> None:
    code = (
        "import importlib, sys\n"
        f"names = {dictating_modules()!r}\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"the dictating layer pulled in: {result.stdout.strip()}"


def test_the_check_sees_torch_when_it_is_imported() -> None:
    # The same probe on a module of the adapting layer must report torch, or the
    # probe above could pass by never looking.
    code = "import sys, dictation.adapt.features\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "True", result.stderr
