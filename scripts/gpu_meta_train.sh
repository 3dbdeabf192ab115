#!/usr/bin/env bash
# Meta-train on a GPU machine from a kit made by `scripts/gpu_kit.py pack` (no project
# install needed there: python3 with torch, numpy and tokenizers; other wheels in KIT/wheels),
# then time adaptation of 10 phrases on CUDA with the bundle it wrote.
#
#   scripts/gpu_meta_train.sh KIT OUT MINUTES [extra `dictation train` flags]
#
# OUT receives run/ (checkpoint.pt, train_log.jsonl), bundle/ (bundle.json, weights.npz),
# train.out and adapt_cuda.out. Rerunning with the same OUT resumes from its checkpoint.
set -uo pipefail
KIT=$(realpath "$1"); OUT=$(realpath "$2"); MINUTES=$3; shift 3
cd "$(dirname "$0")/.."
if ls "$KIT"/wheels/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/dictation-site "$KIT"/wheels/*.whl || exit 1
    export PYTHONPATH=/tmp/dictation-site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 DICTATION_BACKBONE_DIR=$KIT/backbone
[ -f "$KIT/backbone/model.npz" ] || python3 scripts/gpu_kit.py unpack "$KIT" || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -m dictation train --corpus "$KIT/corpus" --run-dir "$OUT/run" --out "$OUT/bundle" \
    --device "${DEVICE:-cuda}" --steps 100000 --minutes "$MINUTES" --threads 4 "$@" 2>&1 | tee "$OUT/train.out"
rc=$?
if [ -f "$OUT/bundle/weights.npz" ]; then
    python3 benchmarks/adaptation.py --pairs "$KIT/enroll" --bundle "$OUT/bundle" --devices "${BENCH_DEVICES:-cuda,cpu}" \
        --threads 2 --repeats 5 --no-export 2>&1 | tee "$OUT/adapt_cuda.out"
fi
exit $rc
