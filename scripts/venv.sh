# shellcheck shell=bash
# Sourced by ./run and ./run-tests: make sure .venv exists and holds this checkout's
# project (editable install) with the requested extras. The install is redone only
# when pyproject.toml, the extras or the Python changed (a hash kept in a stamp file),
# so a rerun costs milliseconds.

ensure_venv() {
    local extras="${1:-}"   # e.g. "dev"; empty for the app alone
    local root="$DICTATION_ROOT"
    local venv="$root/.venv"
    local python="${DICTATION_PYTHON:-python3.11}"
    local stamp="$venv/.dictation-install-stamp"

    if [ ! -x "$venv/bin/python" ]; then
        if ! command -v "$python" >/dev/null 2>&1; then
            echo "error: $python not found. Install Python 3.11 (Debian 12: apt-get install python3 python3-venv)" \
                 "or point DICTATION_PYTHON at a 3.11 interpreter." >&2
            return 1
        fi
        echo "Creating $venv with $("$python" --version 2>&1) ..." >&2
        if ! "$python" -m venv "$venv"; then
            rm -rf "$venv"
            echo "error: could not create the virtual environment (Debian: apt-get install python3-venv)" >&2
            return 1
        fi
    fi

    local spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    # Stamp lines are "<hash of pyproject.toml + python> <extras>".
    local phash want
    phash="$( { cat "$root/pyproject.toml"; "$venv/bin/python" -VV; } | sha256sum | cut -d' ' -f1)"
    want="$phash extras=$extras"
    if [ -f "$stamp" ] && grep -qx "$want" "$stamp"; then
        return 0
    fi
    # Two ./run at once must not install into the same venv together.
    exec 9>"$venv/.install.lock"
    command -v flock >/dev/null 2>&1 && flock 9
    if [ -f "$stamp" ] && grep -qx "$want" "$stamp"; then
        exec 9>&-
        return 0
    fi
    echo "Installing dictation$([ -n "$extras" ] && echo "[$extras]") into $venv (pyproject.toml changed) ..." >&2
    (cd "$root" && "$venv/bin/python" -m pip install --disable-pip-version-check -q -e "$spec") >&2 || {
        exec 9>&-
        echo "error: pip install failed (see above)" >&2
        return 1
    }
    # One line per extras set (./run and ./run-tests must not undo each other); lines
    # for an older pyproject.toml are dropped.
    { if [ -f "$stamp" ]; then grep "^$phash " "$stamp" || true; fi; echo "$want"; } | sort -u > "$stamp.tmp"
    mv "$stamp.tmp" "$stamp"
    exec 9>&-
}
