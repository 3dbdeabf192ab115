"""The adaptation worker: runs in a process spawned by ``AdaptationJob``.

Steps: bound CPU use, load the profile's takes (+ corrections), hold back 1-2 takes
(deterministically), adapt the model, export it into a staging dir inside the
profile, measure word error rate on the held-back takes with the base model, the
model in use and the new export (all through the ONNX runtime the user dictates
with), and install the new model only if it is no worse.

The profile is only ever changed by ``Profile.install_model`` (renames), so a killed
or crashed worker leaves it as it was; its staging dir is removed next time.

Events put on the queue: see ``dictation.adapt.job``. This module imports no torch at
module level: the spawn start-up imports it before the thread limits are set.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

MIN_TAKES = 3
# Test-only injection point: "module:function" or "/path/file.py:function" used in
# place of dictation.meta.adaptation.adapt, so tests can make the real worker process
# run long, crash or be killed at a known point. Never set it in normal use.
ADAPT_TARGET_ENV = "DICTATION_TEST_ADAPT_TARGET"
# Progress events at most this often (a GUI redraw per step is wasteful).
_PROGRESS_INTERVAL_S = 0.1


class WorkerError(Exception):
    """A failure with a message meant for the user."""


class Cancelled(Exception):
    """The user cancelled between two phases."""


def cpu_threads() -> int:
    """Threads for torch in the worker: 1, or 2 on machines with 8+ cores.

    Few on purpose: the user keeps working meanwhile, and under contention more
    OpenMP threads were measured to run slower, not faster.
    """
    return 2 if (os.cpu_count() or 1) >= 8 else 1


def held_back(take_ids: list[str]) -> list[str]:
    """The ids kept back for before/after WER: 1 (2 from 10 takes), chosen by id hash.

    Deterministic, so the same takes are held back when adaptation is re-run.
    """
    count = 2 if len(take_ids) >= 10 else 1
    ranked = sorted(take_ids, key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())
    return sorted(ranked[:count])


def run(profile_name: str, steps: int | None, device: str, events: Any, cancel: Any) -> None:
    """Process entry point. Puts events on ``events``; ``cancel`` is a multiprocessing Event."""
    threads = cpu_threads()
    # Before torch is imported (it reads these at start-up).
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if hasattr(os, "nice"):
        try:
            os.nice(10)  # the desktop (and dictation) keep priority over adaptation
        except OSError:
            pass
    # Ctrl-C in a terminal reaches the whole process group; the parent decides (cancel).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="adapt-worker %(levelname)s %(name)s: %(message)s")

    def emit(event: dict) -> None:
        events.put(event)

    try:
        from dictation.profiles import Profile

        with _adaptation_lock(Profile.open(profile_name).name):
            _run(profile_name, steps, device, emit, cancel.is_set, threads)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an event for the user
        # Whatever the adapt step raised once cancel was asked (AdaptationCancelled or
        # an error of a half-stopped run), the user asked to stop: report that.
        if cancel.is_set() or isinstance(exc, Cancelled):
            emit({"type": "error", "message": "cancelled"})
        elif isinstance(exc, WorkerError) or _is_profile_error(exc):
            emit({"type": "error", "message": str(exc)})
        else:
            traceback.print_exc(file=sys.stderr)
            emit(
                {
                    "type": "error",
                    "message": f"adaptation failed: {type(exc).__name__}: {exc}; "
                    "your previous model is unchanged",
                }
            )


def _is_profile_error(exc: BaseException) -> bool:
    from dictation.profiles import ProfileError

    return isinstance(exc, ProfileError)


@contextlib.contextmanager
def _adaptation_lock(profile_name: str) -> Iterator[None]:
    """One adaptation per profile at a time (GUI and CLI may both try).

    An OS lock (released by the kernel when the process dies, even when killed) on a
    file beside the profiles, so the profile itself is not touched. POSIX only.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; the last install wins
        yield
        return
    from dictation.profiles import profiles_root

    path = profiles_root() / f".adapt-{profile_name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkerError(
                f"another adaptation of profile {profile_name!r} is already running; "
                "wait for it to finish or cancel it"
            ) from None
        yield
    finally:
        os.close(fd)


def _run(
    profile_name: str,
    steps: int | None,
    device: str,
    emit: Callable[[dict], None],
    should_cancel: Callable[[], bool],
    threads: int,
) -> None:
    from dictation.profiles import Profile  # no torch

    def check_cancel() -> None:
        if should_cancel():
            raise Cancelled()

    def status(message: str) -> None:
        emit({"type": "status", "message": message})

    profile = Profile.open(profile_name)
    profile.clean_stale_staging()
    takes = profile.takes()
    corrections = profile.corrections()
    if len(takes) < MIN_TAKES:
        raise WorkerError(
            f"profile {profile_name!r} has {len(takes)} takes; record at least {MIN_TAKES} "
            "before adapting"
        )
    held_ids = set(held_back([t.id for t in takes]))
    held = [t for t in takes if t.id in held_ids]
    train = [t for t in takes if t.id not in held_ids] + corrections

    from dictation.audio import load_audio

    status(
        f"loading {len(train)} recordings ({len(corrections)} of them corrections); "
        f"{len(held)} held back to check the result"
    )
    train_data = [(load_audio(t.wav_path), t.text) for t in train]
    held_audio = [load_audio(t.wav_path) for t in held]
    check_cancel()

    import torch

    torch.set_num_threads(threads)
    resolved = resolve_device(device, torch.cuda.is_available())
    adapt_fn = _adapt_function()

    started = time.monotonic()
    adapted, used_device, total_steps = adapt_with_fallback(
        adapt_fn, train_data, steps, resolved, emit, should_cancel, is_oom=lambda e: is_cuda_oom(e, torch)
    )
    adapt_seconds = time.monotonic() - started
    check_cancel()

    # The export goes into a fresh dir inside a pid-named staging dir: whatever a killed
    # worker leaves behind stays in there and is removed by the next run.
    stage_root = profile.new_stage_dir()
    stage = stage_root / "model"
    try:
        status("exporting the adapted model")
        report = adapted.export(stage)
        check_cancel()
        status("measuring on your held-back phrases")
        refs = [t.text for t in held]
        before, current, after = _measure(profile.model_dir(), stage, refs, held_audio, threads)
        check_cancel()
        install, reason = decide_install(before, current, after)
        if install:
            metadata = {
                "created": datetime.now().astimezone().isoformat(timespec="seconds"),
                "steps": total_steps,
                "train_takes": len(train) - len(corrections),
                "corrections": len(corrections),
                "held_back": sorted(held_ids),
                "before_wer": before,
                "after_wer": after,
                "previous_wer": current,
                "device": used_device,
                "seconds": round(time.monotonic() - started, 2),
                "adapt_seconds": round(adapt_seconds, 2),
                "base_model_version": (report or {}).get("model_version"),
                "export": _json_safe(
                    {k: v for k, v in (report or {}).items() if k in ("parity", "export_seconds", "opset")}
                ),
            }
            profile.install_model(stage, metadata)
        emit(
            {
                "type": "done",
                "installed": install,
                "before_wer": before,
                "after_wer": after,
                "previous_wer": current,
                "reason": reason,
                "device": used_device,
            }
        )
    finally:
        # Installed (moved out) or not: the staging dir goes, the profile is consistent.
        shutil.rmtree(stage_root, ignore_errors=True)


def decide_install(before: float, current: float | None, after: float) -> tuple[bool, str]:
    """Install only if the new model is no worse than base and than the model in use."""
    if after > before:
        return False, (
            "not installed: adapted model was worse on your held-back phrases "
            f"({_pct(after)} vs {_pct(before)})"
        )
    if current is not None and after > current:
        return False, (
            "not installed: adapted model was worse on your held-back phrases than your "
            f"current adapted model ({_pct(after)} vs {_pct(current)})"
        )
    return True, f"installed: {_pct(before)} -> {_pct(after)} word errors on your held-back phrases"


def resolve_device(requested: str, cuda_available: bool) -> str:
    """Map ``auto|cpu|cuda`` to the device to use; WorkerError for an impossible request."""
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda":
        if not cuda_available:
            raise WorkerError(
                "CUDA was requested but torch sees no CUDA GPU here; use --device auto or cpu"
            )
        return "cuda"
    raise WorkerError(f"unknown device {requested!r}; use auto, cpu or cuda")


def is_cuda_oom(exc: BaseException, torch: Any) -> bool:
    oom_type = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def adapt_with_fallback(
    adapt_fn: Callable[..., Any],
    takes: list,
    steps: int | None,
    device: str,
    emit: Callable[[dict], None],
    should_cancel: Callable[[], bool],
    is_oom: Callable[[BaseException], bool],
) -> tuple[Any, str, int]:
    """Run ``adapt_fn`` with progress events; on CUDA out-of-memory retry once on CPU.

    Returns (adapted model, device used, total steps reported).
    """
    state = {"start": time.monotonic(), "last": 0.0, "total": steps or 0}

    def progress(step: int, total: int, loss: float) -> None:
        now = time.monotonic()
        state["total"] = total
        if step < total and now - state["last"] < _PROGRESS_INTERVAL_S:
            return
        state["last"] = now
        elapsed = now - state["start"]
        eta = elapsed / step * (total - step) if step > 0 else None
        emit(
            {
                "type": "progress",
                "step": int(step),
                "total": int(total),
                "loss": float(loss),
                "eta_seconds": None if eta is None else round(eta, 1),
            }
        )

    try:
        adapted = adapt_fn(list(takes), steps, device, progress, should_cancel)
        return adapted, device, int(state["total"])
    except Exception as exc:
        if device == "cpu" or not is_oom(exc) or should_cancel():
            raise
        emit(
            {
                "type": "status",
                "message": f"the GPU ran out of memory ({exc}); continuing on the CPU, which is slower",
            }
        )
        _free_cuda()
    state.update(start=time.monotonic(), last=0.0)
    adapted = adapt_fn(list(takes), steps, "cpu", progress, should_cancel)
    return adapted, "cpu", int(state["total"])


def _free_cuda() -> None:
    try:
        import torch

        torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort only
        pass


def _adapt_function() -> Callable[..., Any]:
    target = os.environ.get(ADAPT_TARGET_ENV)
    if not target:
        from dictation.meta.adaptation import adapt

        return adapt
    location, _, func = target.rpartition(":")
    if location.endswith(".py"):
        spec = importlib.util.spec_from_file_location("dictation_test_adapt_target", location)
        if spec is None or spec.loader is None:
            raise WorkerError(f"{ADAPT_TARGET_ENV}: cannot load {location}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(location)
    return getattr(module, func)


def _measure(
    current_dir: Path | None, stage: Path, refs: list[str], audios: list, threads: int
) -> tuple[float, float | None, float]:
    """WER of the base model, the model in use (None when that is base) and the new export."""
    from dictation.runtime import Transcriber, base_model_dir
    from dictation.text import wer

    def score(model_dir: Path) -> float:
        transcriber = Transcriber(model_dir, threads=threads)
        return wer(refs, [transcriber.transcribe(a).text for a in audios])

    before = score(base_model_dir())
    current = score(current_dir) if current_dir is not None else None
    after = score(stage)
    return before, current, after


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
