#!/usr/bin/env bash
# fastgan's GPU check: on a machine with a GPU, torch (with CUDA) and triton, and no network,
#   1. builds the extension with its CUDA kernels (setup.py build_ext --inplace),
#   2. runs the test suite's GPU part (the cuda and triton backends for real, then everything),
#   3. runs the GPU benchmarks (`fastgan bench --device cuda`: eager idiom, best eager,
#      torch.compile, triton, cuda; medians of CUDA-event timings; the measured device copy
#      bandwidth and each operator's share of it),
# and writes logs, a table (markdown, CSV) and JSON to OUT_DIR (default
# benchmarks/results/<device>/). Each stage has a time limit, and what a stage wrote stays
# when a later one fails or runs out of time. Exit status: 0 when every stage passed.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# Environment: PYTHON (default python3), MAX_JOBS (parallel compile jobs, default: all cores),
# GPU_CHECK_TEST_TIMEOUT / GPU_CHECK_BENCH_TIMEOUT / GPU_CHECK_SUITE_TIMEOUT (seconds),
# GPU_CHECK_BENCH_ARGS (extra arguments of fastgan bench), GPU_CHECK_DRY_RUN=1 (no GPU: run
# every stage on the CPU with tiny settings, to check this script itself).
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DRY=${GPU_CHECK_DRY_RUN:-0}

if [ "$DRY" = "1" ]; then
    DEVICE=cpu
    NAME=dry-run-cpu
else
    if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        echo "gpu_check: no CUDA device is visible to torch (set GPU_CHECK_DRY_RUN=1 to check the script on a CPU)" >&2
        exit 2
    fi
    DEVICE=cuda
    NAME=$("$PY" -c "import re, torch; print(re.sub(r'[^a-z0-9]+', '-', torch.cuda.get_device_name(0).lower()).strip('-'))")
fi
OUT=${1:-benchmarks/results/$NAME}
mkdir -p "$OUT"
SUMMARY="$OUT/gpu_check.log"
: > "$SUMMARY"
status=0

log() { echo "[gpu_check $(date -u +%H:%M:%S)] $*" | tee -a "$SUMMARY"; }

stage() {  # stage NAME TIMEOUT LOGFILE COMMAND...
    local name=$1 limit=$2 logfile=$3
    shift 3
    log "$name: $*"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" > "$logfile" 2>&1
    local rc=$?
    local took=$((SECONDS - start))
    if [ $rc -eq 0 ]; then
        log "$name: passed in ${took}s"
    else
        [ $rc -eq 124 ] && log "$name: ran out of time (${limit}s)" || log "$name: FAILED (exit $rc) after ${took}s"
        tail -n 30 "$logfile" | sed 's/^/    /' | tee -a "$SUMMARY"
        status=1
    fi
    return $rc
}

log "output: $OUT (device: $DEVICE, $NAME)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv > "$OUT/nvidia-smi.csv" 2>/dev/null || true

# 1. build (a CUDAExtension when torch has CUDA and nvcc is found)
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
stage build "${GPU_CHECK_BUILD_TIMEOUT:-600}" "$OUT/build.log" "$PY" setup.py build_ext --inplace
"$PY" -m fastgan info --json > "$OUT/info.json" 2> "$OUT/info.err" || status=1
"$PY" -m fastgan info | tee -a "$SUMMARY"
if [ "$DEVICE" = cuda ]; then
    for backend in cuda triton; do
        if ! "$PY" -c "import sys, fastgan; sys.exit(0 if '$backend' in fastgan.available_backends() else 1)"; then
            log "backend $backend is NOT available on this GPU machine (see fastgan info above)"
            status=1
        fi
    done
fi

# 2. tests: first the GPU backends (parametrised suites select them by id), then everything
if [ "$DRY" = "1" ]; then
    stage tests-gpu "${GPU_CHECK_TEST_TIMEOUT:-600}" "$OUT/pytest-gpu.log" \
        "$PY" -m pytest -q -x -p no:cacheprovider tests/test_triton_launches.py
else
    stage tests-gpu "${GPU_CHECK_TEST_TIMEOUT:-420}" "$OUT/pytest-gpu.log" \
        "$PY" -m pytest -q -p no:cacheprovider -k "cuda or triton" tests/ --junitxml "$OUT/pytest-gpu.xml"
fi

# 3. benchmarks (DESIGN.md §5)
if [ "$DRY" = "1" ]; then
    BENCH=(--device cpu --sizes tiny --ops interpolate,grad_norm_penalty --budget 0.05 --max-wait 0 --no-plots)
else
    BENCH=(--device cuda --sizes small,target --budget 0.5)
fi
# shellcheck disable=SC2206
EXTRA=(${GPU_CHECK_BENCH_ARGS:-})
stage bench "${GPU_CHECK_BENCH_TIMEOUT:-300}" "$OUT/bench.log" \
    "$PY" -m fastgan bench "${BENCH[@]}" "${EXTRA[@]}" --name "$NAME" --out "$OUT"

# 4. the whole suite (CPU parts included) when there is time left
if [ "$DRY" != "1" ]; then
    stage tests-all "${GPU_CHECK_SUITE_TIMEOUT:-300}" "$OUT/pytest-all.log" \
        "$PY" -m pytest -q -p no:cacheprovider tests/ -k "not (cuda or triton)"
fi

log "done: $([ $status -eq 0 ] && echo 'every stage passed' || echo 'some stage FAILED')"
exit $status
