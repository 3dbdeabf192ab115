#!/usr/bin/env bash
# Code checks CI runs before the tests: ruff (lint + format), mypy, import contracts.
# Usage: scripts/check-code.sh  (sets up .venv with the dev extra like ./run-tests)
set -euo pipefail
DICTATION_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DICTATION_ROOT
# shellcheck source=scripts/venv.sh
source "$DICTATION_ROOT/scripts/venv.sh"
ensure_venv dev
cd "$DICTATION_ROOT"
bin="$DICTATION_ROOT/.venv/bin"
failed=()
echo "== ruff check" >&2;           "$bin/ruff" check . || failed+=("ruff check")
echo "== ruff format --check" >&2;  "$bin/ruff" format --check . || failed+=("ruff format")
echo "== mypy" >&2;                 "$bin/mypy" || failed+=("mypy")
echo "== lint-imports" >&2;         "$bin/lint-imports" || failed+=("lint-imports (layer contracts)")
if [ "${#failed[@]}" -gt 0 ]; then
    echo "error: code checks failed: ${failed[*]}" >&2
    exit 1
fi
echo "code checks passed" >&2
