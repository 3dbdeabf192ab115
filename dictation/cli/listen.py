"""`dictation listen`: dictate into any application with a system-wide key, no window."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from dictation.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, error

DESCRIPTION = """\
Dictate into whatever application has the keyboard focus. Hold the key while you speak
(--mode hold), or press it once to start and again to stop (--mode toggle; also stops
after --silence seconds without speech). The text is typed where the cursor is (--output
type), pasted through the clipboard with the paste key, the user's clipboard given back
afterwards (--output paste), or only put on the clipboard (--output clipboard). Text that
cannot be delivered (no focused window, key injection refused) goes to the clipboard,
with a warning; with a profile it is also kept in the profile's history.

Once the key is grabbed, the model loaded and the microphone open, prints "ready" on a
line of its own to stdout. Runs until Ctrl-C or SIGTERM (exit status 0). Logs go to the
log file (warnings also to stderr).

Key backends: X11 (a key grab; X11 sessions), the xdg-desktop-portal GlobalShortcuts
portal (Wayland desktops that offer it), evdev (/dev/input; needs membership of the
'input' group). Output: X11 XTEST; on Wayland wtype or ydotool, and wl-copy/wl-paste.
"""

KEY_HELP = (
    "the key: modifiers (ctrl, alt, shift, super) and one X keysym name joined by '+', any case, "
    "e.g. ctrl+alt+space, super+h, F9, Pause (default: the profile's listen_key setting, else ctrl+alt+space)"
)


def register(subparsers: Any) -> None:
    from dictation.app.delivery.deliver import DEFAULT_PASTE_KEY, OUTPUT_MODES
    from dictation.app.listen import DEFAULT_KEY, DEFAULT_SILENCE_S, MODES

    p = subparsers.add_parser(
        "listen",
        help="dictate into any application with a system-wide key (no window)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--profile",
        help="profile whose model, settings and history to use (default: the only profile, "
        "the base model when there is none)",
    )
    p.add_argument("--key", metavar="KEY", help=KEY_HELP.replace("ctrl+alt+space)", f"{DEFAULT_KEY})"))
    p.add_argument(
        "--mode", choices=MODES, help="hold: talk while the key is held (default); toggle: press to start and to stop"
    )
    p.add_argument(
        "--output",
        choices=OUTPUT_MODES,
        help="type the text (default), paste it with the paste key, or only put it on the clipboard",
    )
    p.add_argument(
        "--device", metavar="DEV", help="microphone, by name or part of one (default: the profile's, else the default)"
    )
    p.add_argument(
        "--paste-key",
        metavar="KEY",
        help=f"the key that pastes in --output paste (default {DEFAULT_PASTE_KEY}; e.g. ctrl+shift+v for terminals, shift+Insert)",
    )
    p.add_argument(
        "--silence",
        type=float,
        metavar="SECONDS",
        help=f"toggle mode stops after this long without speech (default {DEFAULT_SILENCE_S:g})",
    )
    p.add_argument(
        "--backend",
        choices=("x11", "portal", "evdev"),
        help="key backend (default: x11 in an X11 session, else the portal, else evdev)",
    )
    p.set_defaults(func=cmd_listen)


def _pick_profile(name: str | None) -> Any:
    """The named profile, the only one when there is exactly one, else None (base model)."""
    from dictation.app.profiles import Profile, list_profiles

    if name:
        return Profile.open(name)
    names = list_profiles()
    if len(names) == 1:
        return Profile.open(names[0])
    if len(names) > 1:
        raise LookupError(f"there are several profiles ({', '.join(names)}): choose one with --profile")
    return None


def cmd_listen(args: argparse.Namespace) -> int:
    from dictation.app.hotkeys import HotkeyError, KeySpecError, parse_key
    from dictation.app.profiles import ProfileError

    log = logging.getLogger("dictation.listen")
    for flag in ("key", "paste_key"):
        value = getattr(args, flag)
        if value is not None:
            try:
                parse_key(value)
            except KeySpecError as exc:
                error(f"--{flag.replace('_', '-')}: {exc}")
                return EXIT_USAGE
    try:
        profile = _pick_profile(args.profile)
        settings = profile.settings() if profile is not None else {}
    except LookupError as exc:
        error(str(exc))
        return EXIT_USAGE
    except (ProfileError, OSError) as exc:
        error(str(exc))
        return EXIT_FAIL

    from dictation.app.audio import AudioError
    from dictation.app.decoding import DEFAULT_BEAM
    from dictation.app.delivery import DeliveryError
    from dictation.app.listen import ListenConfig, ListenLoop, print_ready
    from dictation.app.model_choice import load_model
    from dictation.app.vocabulary import for_profile

    try:
        config = ListenConfig.from_settings(
            settings,
            key=args.key,
            mode=args.mode,
            output=args.output,
            paste_key=args.paste_key,
            device=args.device,
            silence_s=args.silence,
            backend=args.backend,
        )
        # The profile's adapted model, else its previous one, else the base model: a model
        # that fails to load is named once and the next good one is used.
        loaded = load_model(
            profile,
            beam=DEFAULT_BEAM if config.beam is None else int(config.beam),
            on_problem=lambda problem: print(f"dictation: {problem.message}", file=sys.stderr),
            on_build=lambda message: print(f"dictation: {message}", file=sys.stderr, flush=True),
        )
        if profile is not None:
            loaded.transcriber.vocabulary = for_profile(profile)
        loop = ListenLoop(config, loaded.model_dir, profile, transcriber=loaded.transcriber)
    except (ValueError, KeySpecError) as exc:  # a bad key or mode saved in the profile's settings
        error(str(exc))
        return EXIT_USAGE
    except (RuntimeError, OSError) as exc:
        error(f"cannot load the model: {exc}")
        return EXIT_FAIL

    def on_signal(signum: int, frame: Any) -> None:
        loop.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        loop.start()
        print_ready()
        loop.run()
    except (HotkeyError, AudioError, DeliveryError, ValueError, RuntimeError, OSError) as exc:
        error(str(exc))
        return EXIT_FAIL
    finally:
        loop.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("listen stopped")
    return EXIT_OK
