"""The adaptation worker: runs in a process spawned by ``AdaptationJob``.

Steps: bound CPU use, load the profile's takes (+ corrections), adapt the model on all
of them (plus their speed copies when the bundle names speeds), export it into a
staging dir inside the profile, then check the adaptation by 2-fold cross-validation
(`dictation.adapt.held_out_check`: each half of the takes scored, by token loss and by
words, with models adapted on the other half, at full and half strength, against the
base model on the same takes). `dictation.adapt.install_rule` decides from that: the
update is installed (at the strength that fitted the held-back takes best) only when it
beats the base model on them; otherwise the model in use stays and the new one is kept
aside in the profile (``model.candidate/``), and the result says so with the numbers.

Why cross-validation and not a held-back pair of takes (the earlier design): on
meta-validation speakers a before/after WER on 2 takes was noise, and holding them
back cost 20 % of the enrollment data.

The profile is only ever changed by ``Profile.install_model`` and
``Profile.keep_candidate_model`` (renames), so a killed or crashed worker leaves it as it
was; its staging dir is removed next time. The worker dies with the process that started
it and never installs for one that is gone (`dictation.adapt.worker_process`).

Events put on the queue: see ``dictation.app.adapt_job``. This module imports no torch at
module level: the spawn start-up imports it before the thread limits are set.

The worker logs into the app's log file (``dictation.app.logs``), appending without
rotating it: only the app's process rotates the file, and the worker reopens it after a
rotation. Records sent to the parent over the events queue would also keep one writer,
but would reach the file only when the parent polls, and the last ones, still in the
queue's feeder thread, die with a crashed worker: the lines that explain the crash.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from dictation.adapt.install_rule import former_rule as decide_install  # noqa: F401  (the lab reads it here)
from dictation.adapt.worker_process import bound_resources
from dictation.adapt.worker_process import cpu_threads as cpu_threads  # tests read it here

log = logging.getLogger(__name__)

MIN_TAKES = 3
# Test-only injection point: "module:function" or "/path/file.py:function" used in
# place of dictation.adapt.procedure.adapt, so tests can make the real worker process
# run long, crash or be killed at a known point. Never set it in normal use.
ADAPT_TARGET_ENV = "DICTATION_TEST_ADAPT_TARGET"
# The same for the check (in place of dictation.adapt.held_out_check.held_out_check), so a
# test's stand-in adaptation can come with the figures its check reports.
CHECK_TARGET_ENV = "DICTATION_TEST_CHECK_TARGET"
# Progress events at most this often (a GUI redraw per step is wasteful).
_PROGRESS_INTERVAL_S = 0.1


class WorkerError(Exception):
    """A failure with a message meant for the user."""


class Cancelled(Exception):
    """The user cancelled between two phases."""


def run(
    profile_name: str, steps: int | None, device: str, events: Any, cancel: Any, parent_pid: int | None = None
) -> None:
    """Process entry point. Puts events on ``events``; ``cancel`` is a multiprocessing Event;
    ``parent_pid``: the process that started the job (the worker stops when it is gone)."""
    from dictation.adapt.worker_process import ParentGone, die_with_parent, parent_alive, quiet_libraries

    threads = bound_resources()  # before torch is imported (it reads the limits at start-up)
    _log_to_the_app_file()
    quiet_libraries()

    def emit(event: dict) -> None:
        if event.get("type") in ("done", "error"):
            log.info("adaptation of profile %r ended: %s", profile_name, event.get("reason") or event.get("message"))
        events.put(event)

    def should_stop() -> bool:
        """Cancelled by the user, or the app that asked for it is gone."""
        return cancel.is_set() or not parent_alive(parent_pid)

    log.info("adapting profile %r (device %s, %d threads)", profile_name, device, threads)

    try:
        die_with_parent(parent_pid)
        from dictation.app.profiles import Profile

        with _adaptation_lock(Profile.open(profile_name).name):
            _run(profile_name, steps, device, emit, should_stop, threads, lambda: parent_alive(parent_pid))
    except Exception as exc:
        if not parent_alive(parent_pid) or isinstance(exc, ParentGone):
            # Nobody reads the events any more; the profile was left as it was.
            log.info("adaptation of profile %r stopped: the app that started it is gone", profile_name)
            events.cancel_join_thread()
        # Whatever the adapt step raised once cancel was asked (AdaptationCancelled or
        # an error of a half-stopped run), the user asked to stop: report that.
        elif cancel.is_set() or isinstance(exc, Cancelled):
            emit({"type": "error", "message": "cancelled"})
        elif isinstance(exc, WorkerError) or _is_profile_error(exc):
            emit({"type": "error", "message": str(exc)})
        else:
            log.exception("adaptation of profile %r failed", profile_name)
            emit(
                {
                    "type": "error",
                    "message": f"adaptation failed: {type(exc).__name__}: {exc}; your previous model is unchanged",
                }
            )


def _log_to_the_app_file() -> None:
    """Log into the app's log file (and stderr), appending without rotating: the app's
    own process rotates the file (`dictation.app.logs.setup_logging`, `rotate`)."""
    from dictation.app.logs import setup_logging

    setup_logging(rotate=False)


def _is_profile_error(exc: BaseException) -> bool:
    from dictation.app.profiles import ProfileError

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
    from dictation.app.profiles import profiles_root

    path = profiles_root() / f".adapt-{profile_name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkerError(
                f"another adaptation of profile {profile_name!r} is already running; wait for it to finish or cancel it"
            ) from None
        yield
    finally:
        os.close(fd)


def _run(
    profile_name: str,
    steps: int | None,
    device: str,
    emit: Callable[[dict], None],
    should_stop: Callable[[], bool],
    threads: int,
    parent_here: Callable[[], bool],
) -> None:
    from dictation.adapt.worker_process import ParentGone
    from dictation.app.profiles import Profile  # no torch

    def check_cancel() -> None:
        if not parent_here():
            raise ParentGone()
        if should_stop():
            raise Cancelled()

    def status(message: str) -> None:
        emit({"type": "status", "message": message})

    profile = Profile.open(profile_name)
    profile.clean_stale_staging()
    takes = profile.takes()
    corrections = profile.corrections()
    if len(takes) < MIN_TAKES:
        raise WorkerError(
            f"profile {profile_name!r} has {len(takes)} takes; record at least {MIN_TAKES} before adapting"
        )
    learned = profile.learned_material.accepted()  # dictations accepted unchanged (learning from use)
    train = list(takes) + list(corrections) + list(learned)

    from dictation.app.audio import AudioFileError, load_audio

    status(f"loading {len(train)} recordings ({len(corrections)} of them corrections)")
    # One unreadable recording must not fail the adaptation of the whole profile.
    skipped = [str(problem) for problem in profile.unreadable_takes()]
    train_data = []
    for take in train:
        try:
            train_data.append((load_audio(take.wav_path), take.text))
        except (AudioFileError, OSError, ValueError) as exc:
            skipped.append(f"{take.wav_path}: {exc}")
    if skipped:
        status(
            f"skipping {len(skipped)} unreadable recording(s) (`dictation profile check {profile_name}` "
            f"lists them): {'; '.join(skipped[:3])}"
        )
    if len(train_data) < MIN_TAKES:
        raise WorkerError(
            f"profile {profile_name!r} has {len(train_data)} readable recordings; record at least {MIN_TAKES}"
        )
    check_cancel()

    import torch

    torch.set_num_threads(threads)
    resolved = resolve_device(device, torch.cuda.is_available())
    adapt_fn = _adapt_function()

    started = time.monotonic()
    adapted, used_device, total_steps = adapt_with_fallback(
        adapt_fn, train_data, steps, resolved, emit, should_stop, is_oom=lambda e: is_cuda_oom(e, torch)
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
        status("checking: adapting on each half of your recordings, testing on the other half")
        check, base_values = _held_out_check(train_data, total_steps, used_device, should_stop)
        check_cancel()
        from dictation.adapt.install_rule import decide

        in_use = _in_use(profile)
        decision = decide(check, in_use)
        if decision.install and decision.factor != 1.0:
            from dictation.adapt.held_out_check import shrink_in_place

            status(f"exporting the update at {decision.factor:g} of its strength, which fitted your recordings best")
            shrink_in_place(adapted.model, base_values, decision.factor)
            shutil.rmtree(stage)
            report = adapted.export(stage)
        metadata = {
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            "steps": total_steps,
            "speed_copies": list(getattr(adapted, "speed_copies", ())),
            "precision": getattr(adapted, "precision", "float32"),
            "train_takes": len(takes),
            "corrections": len(corrections),
            "learned": len(learned),
            "check": f"{check.folds}-fold cross-validation on {check.n_takes} recordings",
            "before_wer": decision.before_wer,
            "after_wer": decision.after_wer,
            "before_loss": round(decision.before_loss, 5),
            "after_loss": round(decision.after_loss, 5),
            "shrink": decision.factor if decision.install else 1.0,
            "decision": decision.reason,
            "device": used_device,
            "seconds": round(time.monotonic() - started, 2),
            "adapt_seconds": round(adapt_seconds, 2),
            "check_seconds": round(check.seconds, 2),
            "base_model_version": (report or {}).get("model_version"),
            "voice_space": _json_safe((report or {}).get("adapt_voice_space") or {}),  # where the steps started
            "export": _json_safe(
                {k: v for k, v in (report or {}).items() if k in ("parity", "export_seconds", "opset")}
            ),
        }
        check_cancel()  # never install, nor keep, for a cancelled job or an app that is gone
        candidate = None
        if decision.install:
            profile.install_model(stage, metadata)
        else:
            candidate = profile.keep_candidate_model(stage, metadata)
        emit(
            {
                "type": "done",
                "installed": decision.install,
                "before_wer": decision.before_wer,
                "after_wer": decision.after_wer,
                "previous_wer": None,  # kept for readers of older events
                "reason": decision.reason,
                "device": used_device,
                "shrink": decision.factor,
                "before_loss": decision.before_loss,
                "after_loss": decision.after_loss,
                "in_use": in_use,
                "candidate": None if candidate is None else str(candidate),
            }
        )
    finally:
        # Installed or kept (moved out) or not: the staging dir goes, the profile is consistent.
        shutil.rmtree(stage_root, ignore_errors=True)


def _in_use(profile: Any) -> str:
    """The model the check's decision keeps, in words."""
    from dictation.app.profiles import ProfileError

    if profile.model_dir() is None:
        return "the base model"
    try:
        zero_step = profile.metadata.get("zero_step")
    except (ProfileError, OSError):  # unreadable metadata: still the profile's own model
        zero_step = False
    return "the voice-space start" if zero_step else "your adapted model"


def resolve_device(requested: str, cuda_available: bool) -> str:
    """Map ``auto|cpu|cuda`` to the device to use; WorkerError for an impossible request."""
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda":
        if not cuda_available:
            raise WorkerError("CUDA was requested but torch sees no CUDA GPU here; use --device auto or cpu")
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
    except Exception:
        pass


def _adapt_function() -> Callable[..., Any]:
    from dictation.adapt.procedure import adapt

    return _test_target(ADAPT_TARGET_ENV) or adapt


def _test_target(variable: str) -> Callable[..., Any] | None:
    """The function a test named in `variable` ("module:function" or "file.py:function")."""
    target = os.environ.get(variable)
    if not target:
        return None
    location, _, func = target.rpartition(":")
    if location.endswith(".py"):
        spec = importlib.util.spec_from_file_location(f"dictation_test_target_{func}", location)
        if spec is None or spec.loader is None:
            raise WorkerError(f"{variable}: cannot load {location}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(location)
    return getattr(module, func)


def _held_out_check(takes: list, steps: int, device: str, should_stop: Callable[[], bool]) -> tuple[Any, dict]:
    """The held-out check (on the CPU when CUDA runs out of memory) and the base model's
    adaptation values, to shrink the update toward."""
    from dictation.adapt import held_out_check as module
    from dictation.adapt.learner import Learner
    from dictation.adapt.model.bundle import load_bundle

    held_out_check = _test_target(CHECK_TARGET_ENV) or module.held_out_check
    bundle = load_bundle()
    base_values = Learner.from_bundle(bundle).init
    try:
        return held_out_check(takes, steps, device, should_stop, bundle=bundle), base_values
    except Exception as exc:
        if device == "cpu" or not is_cuda_oom(exc, importlib.import_module("torch")) or should_stop():
            raise
        _free_cuda()
        return held_out_check(takes, steps, "cpu", should_stop, bundle=bundle), base_values


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
