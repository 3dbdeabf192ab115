#!/usr/bin/env bash
# Build the one-folder app (PyInstaller): dist/dictation/dictation plus its libraries.
#
#   packaging/build_onefolder.sh [--dist DIR] [--work DIR] [--base-onnx DIR]
#
# Needs the project's venv with the packaging extra (pip install -e '.[packaging]').
# First exports the bundled model to ONNX with the venv's torch (the frozen app has no
# torch), unless --base-onnx names an existing export of the same bundle version.
# The result dictates (onnxruntime) but cannot adapt (that needs torch).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${DICTATION_BUILD_PYTHON:-$ROOT/.venv/bin/python}"
DIST="$ROOT/dist"
WORK="$ROOT/build/pyinstaller"
BASE_ONNX=""

usage() { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --dist) DIST="$(realpath -m "$2")"; shift 2 ;;
        --work) WORK="$(realpath -m "$2")"; shift 2 ;;
        --base-onnx) BASE_ONNX="$(realpath -m "$2")"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build_onefolder: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

if [ ! -x "$PYTHON" ]; then
    echo "build_onefolder: no venv python at $PYTHON (run ./run once, or set DICTATION_BUILD_PYTHON)" >&2
    exit 1
fi
if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "build_onefolder: PyInstaller is missing: $PYTHON -m pip install -e '$ROOT[packaging]'" >&2
    exit 1
fi

started=$SECONDS
bundle_version="$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$ROOT/models/dictation-tiny-en/bundle.json")"
model_version() {  # model_version DIR: the bundle version an ONNX export was made from
    "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["model_version"])' "$1/model.json"
}

mkdir -p "$WORK"
if [ -z "$BASE_ONNX" ]; then
    BASE_ONNX="$WORK/base-onnx-$bundle_version"
    if [ ! -f "$BASE_ONNX/model.json" ]; then
        echo "build_onefolder: exporting the bundled model $bundle_version to ONNX (torch)" >&2
        rm -rf "$BASE_ONNX"
        OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" "$PYTHON" -m dictation.adapt.model.build_base --out "$BASE_ONNX"
    fi
fi
if [ ! -f "$BASE_ONNX/model.json" ]; then
    echo "build_onefolder: $BASE_ONNX is not an ONNX export (no model.json)" >&2
    exit 1
fi
onnx_version="$(model_version "$BASE_ONNX")"
if [ "$onnx_version" != "$bundle_version" ]; then
    echo "build_onefolder: $BASE_ONNX holds model $onnx_version, the bundle is $bundle_version" >&2
    exit 1
fi
export_done=$SECONDS

echo "build_onefolder: freezing into $DIST/dictation" >&2
DICTATION_BASE_ONNX="$BASE_ONNX" "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" "$ROOT/packaging/pyinstaller/dictation.spec"

app="$DIST/dictation/dictation"
if [ -e "$DIST/dictation/_internal/torch" ]; then
    echo "build_onefolder: torch ended up in the bundle; check the spec's excludes" >&2
    exit 1
fi
"$app" --version
echo "build_onefolder: done in $((SECONDS - started)) s (model export $((export_done - started)) s);" \
    "size $(du -sh "$DIST/dictation" | cut -f1); run $app" >&2
