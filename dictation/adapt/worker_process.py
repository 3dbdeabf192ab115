"""The worker process's own conduct: it dies with the app that started it, and keeps the
libraries' warnings off the user's console.

Dying with the parent. The job starts the worker as a daemon process, which
multiprocessing ends when the parent exits normally; a parent killed (SIGKILL, a crash)
never gets there, and the orphan went on to install a model ~40 s later, pushing the last
good one out of ``model.prev``. So the worker (1) asks Linux to send it SIGTERM when its
parent dies (``prctl(PR_SET_PDEATHSIG)``), then checks that its parent is still the
process that started it (the parent may have died before the prctl, and the signal is
then never sent); and (2) checks again at every phase and before it installs, on any
POSIX system, and stops without touching the profile when the parent is gone.
``PR_SET_PDEATHSIG`` fires when the thread that started the child ends: the app and the
CLI start the job from their main thread.

Quiet libraries. The export and the quantization print warnings nobody can act on
(torch's ONNX exporter's constant folding, onnxruntime's "consider pre-processing before
quantization", onnxruntime's own C++ log). Python warnings go to the log file at DEBUG
(`logging.captureWarnings`-style), log records of other libraries below ERROR go to the
log file only, and onnxruntime's C++ log shows errors only. The worker's own records
(``dictation.*``) reach the console as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import warnings

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_ORT_ERRORS_ONLY = 3  # onnxruntime severity: 0 verbose, 1 info, 2 warning, 3 error


def cpu_threads() -> int:
    """Threads for torch in the worker: 1, or 2 on machines with 8+ cores.

    Few on purpose: the user keeps working meanwhile, and under contention more
    OpenMP threads were measured to run slower, not faster.
    """
    return 2 if (os.cpu_count() or 1) >= 8 else 1


def bound_resources() -> int:
    """Few threads, a lower priority, Ctrl-C ignored; returns the thread count. Call before
    torch is imported: it reads the thread limits at start-up."""
    threads = cpu_threads()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(10)  # the desktop (and dictation) keep priority over adaptation
    # Ctrl-C in a terminal reaches the whole process group; the parent decides (cancel).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return threads


class ParentGone(Exception):
    """The app or command that started this worker has ended: install nothing."""


def parent_alive(parent_pid: int | None) -> bool:
    """Whether the process that started this worker is still its parent (an orphan is
    re-parented to init or a subreaper). True when the parent is not known."""
    return parent_pid is None or os.getppid() == parent_pid


def die_with_parent(parent_pid: int | None) -> None:
    """Have the kernel send SIGTERM when the parent dies (Linux), then check it has not
    died already; ParentGone if it has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
        except (OSError, AttributeError) as exc:
            log.warning("cannot ask to be stopped with the app: %s", exc)
    if not parent_alive(parent_pid):
        raise ParentGone()


def quiet_libraries() -> None:
    """Warnings of the libraries into the log file only (module docstring). Call after the
    logging set-up."""
    warnings.showwarning = _log_warning
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:  # the console, not the (stream-based) file handlers
            handler.addFilter(_ours_or_errors)
    with contextlib.suppress(Exception):  # onnxruntime missing or older: nothing to quiet
        import onnxruntime

        onnxruntime.set_default_logger_severity(_ORT_ERRORS_ONLY)


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` replacement: the warning into the log at DEBUG."""
    text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
    logging.getLogger("py.warnings").debug("%s", text)


def _ours_or_errors(record: logging.LogRecord) -> bool:
    return record.name.startswith("dictation") or record.levelno >= logging.ERROR
