# shellcheck shell=bash
# Sourced by ./run-tests: give the tests a virtual microphone and a display.
#
#  - PulseAudio: if a reachable server already has a sink called `vmic`, it is used.
#    Otherwise a private, minimal server is started (its own XDG_RUNTIME_DIR, never the
#    user's desktop session) with a null sink `vmic` (16 kHz mono) as default sink and
#    `vmic.monitor` as default source: what is played into `vmic` is what the app records.
#  - X: if DISPLAY is unset, an Xvfb is started on a free display number.
#  - QT_QPA_PLATFORM=offscreen unless already set.
# Only what was started here is stopped (stop_test_env, run from an EXIT trap). Every wait is bounded.

_TEST_ENV_PIDS=()
_TEST_ENV_DIRS=()

# Debian packages the tests use: the list CI installs (scripts/debian-packages.txt), so
# that a newcomer's run is CI's run. Prints the ones not installed.
_test_env_missing_packages() {
    local list="${DICTATION_ROOT:-.}/scripts/debian-packages.txt" pkg missing=()
    command -v dpkg-query >/dev/null 2>&1 || return 0   # not Debian: nothing to name
    for pkg in $(sed -e 's/#.*//' "$list"); do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
    done
    printf '%s ' "${missing[@]}"
}

check_test_packages() {
    local missing
    missing="$(_test_env_missing_packages)"
    [ -z "${missing// /}" ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${DICTATION_NO_APT:-}" ]; then
        echo "Installing missing Debian packages: $missing" >&2
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends $missing >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends $missing >&2; } \
            || echo "warning: could not install $missing" >&2
    else
        echo "warning: missing Debian packages: $missing" >&2
        echo "         install them with: sudo apt-get install $missing" >&2
        echo "         (tests that need them are skipped, and listed as skipped at the end)" >&2
    fi
}

_wait_for() {  # _wait_for SECONDS COMMAND...: poll every 0.1 s
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

_has_vmic() { pactl list short sinks 2>/dev/null | awk '{print $2}' | grep -qx vmic; }

start_pulse() {
    if ! command -v pulseaudio >/dev/null 2>&1 || ! command -v pactl >/dev/null 2>&1; then
        echo "warning: PulseAudio not installed: no virtual microphone" >&2
        return 0
    fi
    if pactl info >/dev/null 2>&1 && _has_vmic; then
        echo "Using the running PulseAudio server, which has a vmic sink" >&2
        return 0
    fi
    local dir
    dir="$(mktemp -d "${TMPDIR:-/tmp}/dictation-pulse.XXXXXX")"
    chmod 700 "$dir"
    _TEST_ENV_DIRS+=("$dir")
    # -n: no default.pa, so no hardware detection, idle suspend or stream moves.
    XDG_RUNTIME_DIR="$dir" HOME="$dir" pulseaudio -n --daemonize=no --exit-idle-time=-1 \
        --disallow-exit --use-pid-file=no --log-target="file:$dir/pulse.log" \
        --load="module-native-protocol-unix auth-anonymous=1 socket=$dir/native" \
        --load="module-null-sink sink_name=vmic rate=16000 channels=1 sink_properties=device.description=vmic" \
        </dev/null >/dev/null 2>&1 &
    _TEST_ENV_PIDS+=("$!")
    export XDG_RUNTIME_DIR="$dir" PULSE_SERVER="unix:$dir/native"
    if ! _wait_for 15 pactl info; then
        echo "warning: PulseAudio did not start; log:" >&2
        tail -5 "$dir/pulse.log" >&2 || true
        return 0
    fi
    pactl set-default-sink vmic && pactl set-default-source vmic.monitor
    echo "Started PulseAudio ($PULSE_SERVER) with virtual mic vmic -> vmic.monitor" >&2
}

start_xvfb() {
    if [ -n "${DISPLAY:-}" ]; then
        return 0
    fi
    if ! command -v Xvfb >/dev/null 2>&1; then
        echo "warning: no DISPLAY and Xvfb not installed; Qt tests run offscreen only" >&2
        return 0
    fi
    local n=99
    while [ -e "/tmp/.X11-unix/X$n" ] || [ -e "/tmp/.X$n-lock" ]; do n=$((n + 1)); done
    # -noreset: the server keeps running between clients (tests open and close many).
    Xvfb ":$n" -screen 0 1280x800x24 -nolisten tcp -noreset </dev/null >/dev/null 2>&1 &
    _TEST_ENV_PIDS+=("$!")
    if _wait_for 15 test -e "/tmp/.X11-unix/X$n"; then
        export DISPLAY=":$n"
        echo "Started Xvfb on $DISPLAY" >&2
    else
        echo "warning: Xvfb did not start" >&2
    fi
}

start_test_env() {
    check_test_packages
    trap stop_test_env EXIT
    trap 'exit 130' INT    # so that the EXIT trap also runs on Ctrl-C ...
    trap 'exit 143' TERM   # ... and on kill
    start_pulse
    start_xvfb
    export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
}

stop_test_env() {
    local pid i dir
    for pid in "${_TEST_ENV_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || continue
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    _TEST_ENV_PIDS=()
    for dir in "${_TEST_ENV_DIRS[@]}"; do rm -rf "$dir"; done
    _TEST_ENV_DIRS=()
}
