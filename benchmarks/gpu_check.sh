#!/usr/bin/env bash
# fastgan's GPU check: on a machine with a GPU, torch (with CUDA) and triton, and no network,
#   1. builds the extension with its CUDA kernels (setup.py build_ext --inplace; ninja, MAX_JOBS
#      parallel jobs, default every core),
#   2. runs the tests of the cuda and triton backends for real (pytest -k "cuda or triton"; the
#      compile-only checks of tests/test_cuda_build.py, which CI runs without a GPU, are left out),
#   3. runs the GPU benchmark (`fastgan bench --device cuda --quick`: eager idiom, best eager,
#      torch.compile, triton, cuda; medians of CUDA-event timings; the measured device copy
#      bandwidth and each operator's share of it),
# and writes logs, a table (markdown, CSV), JSON and a stage summary (stages.tsv) to OUT_DIR
# (default benchmarks/results/<device>/).
#
# Time: the whole check fits in one short GPU session. Each stage has its own limit (build 150 s,
# GPU tests 180 s, benchmark 110 s) and all of them share one overall limit (GPU_CHECK_TOTAL_TIMEOUT,
# default 450 s = 7.5 min): a stage never runs past what is left of it. A stage that runs out of
# time is interrupted with SIGINT, so that pytest still writes its summary and JUnit XML and
# fastgan bench its tables of the cases measured so far; what a stage wrote stays when a later one
# fails or runs out of time. Exit status: 0 when every stage passed.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# Environment: PYTHON (default python3), MAX_JOBS (parallel compile jobs, default: all cores),
# GPU_CHECK_BUILD_TIMEOUT / GPU_CHECK_TEST_TIMEOUT / GPU_CHECK_BENCH_TIMEOUT (seconds, per stage),
# GPU_CHECK_TOTAL_TIMEOUT (seconds, all stages), GPU_CHECK_BENCH_ARGS (extra arguments of
# fastgan bench, e.g. "--sizes small,target" for the bandwidth-target size, with a longer bench
# limit), GPU_CHECK_FULL_SUITE=1 (then also the rest of the suite, GPU_CHECK_SUITE_TIMEOUT, outside
# the 7.5 min), GPU_CHECK_DRY_RUN=1 (no GPU: run every stage on the CPU with tiny settings, to
# check this script itself).
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

# the overall limit counts from the script's start (bash's SECONDS); a dry run on a small CPU
# machine builds and tests far slower than a GPU machine, so it gets more
if [ "$DRY" = "1" ]; then TOTAL=${GPU_CHECK_TOTAL_TIMEOUT:-1800}; else TOTAL=${GPU_CHECK_TOTAL_TIMEOUT:-450}; fi
T0=0
STAGES="$OUT/stages.tsv"
printf 'stage\tresult\tseconds\tlimit_s\n' > "$STAGES"

stage() {  # stage NAME TIMEOUT LOGFILE COMMAND...
    local name=$1 limit=$2 logfile=$3
    shift 3
    # never past the overall limit (10 s kept for the SIGINT grace time and the last lines)
    local left=$((TOTAL - (SECONDS - T0) - 10))
    if [ "$left" -lt "$limit" ]; then limit=$left; fi
    if [ "$limit" -lt 5 ]; then
        log "$name: skipped, no time left of the overall ${TOTAL}s"
        printf '%s\tskipped\t0\t0\n' "$name" >> "$STAGES"
        status=1
        return 1
    fi
    log "$name (limit ${limit}s): $*"
    local start=$SECONDS
    # SIGINT first: pytest and fastgan bench then write what they have; SIGKILL 10 s later
    timeout --signal=INT --kill-after=10 "$limit" "$@" > "$logfile" 2>&1
    local rc=$?
    local took=$((SECONDS - start)) result
    if [ $rc -eq 0 ]; then
        result=passed
        log "$name: passed in ${took}s"
    else
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            result=timeout
            log "$name: ran out of time (${limit}s)"
        else
            result="failed($rc)"
            log "$name: FAILED (exit $rc) after ${took}s"
        fi
        tail -n 30 "$logfile" | sed 's/^/    /' | tee -a "$SUMMARY"
        status=1
    fi
    printf '%s\t%s\t%s\t%s\n' "$name" "$result" "$took" "$limit" >> "$STAGES"
    return $rc
}

log "output: $OUT (device: $DEVICE, $NAME)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv > "$OUT/nvidia-smi.csv" 2>/dev/null || true

# 1. build (a CUDAExtension when torch has CUDA and nvcc is found)
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
if ! "$PY" -c "import sys; from torch.utils.cpp_extension import is_ninja_available as n; sys.exit(0 if n() else 1)"; then
    log "ninja is not installed: the build compiles one source at a time and may not fit its limit (pip install ninja)"
fi
[ "$DRY" = "1" ] && BUILD_LIMIT=900 || BUILD_LIMIT=150
stage build "${GPU_CHECK_BUILD_TIMEOUT:-$BUILD_LIMIT}" "$OUT/build.log" "$PY" setup.py build_ext --inplace
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

# 2. tests of the GPU backends (the parametrised suites select them by id); the durations show
#    where the time goes when the stage runs out of it
if [ "$DRY" = "1" ]; then
    stage tests-gpu "${GPU_CHECK_TEST_TIMEOUT:-600}" "$OUT/pytest-gpu.log" \
        "$PY" -m pytest -q -x -p no:cacheprovider tests/test_triton_launches.py --junitxml "$OUT/pytest-gpu.xml"
else
    stage tests-gpu "${GPU_CHECK_TEST_TIMEOUT:-180}" "$OUT/pytest-gpu.log" \
        "$PY" -m pytest -q -p no:cacheprovider -k "cuda or triton" tests/ --ignore tests/test_cuda_build.py \
        --durations 15 --junitxml "$OUT/pytest-gpu.xml"
fi

# 3. benchmarks (fastgan bench; benchmarks/README.md)
if [ "$DRY" = "1" ]; then
    BENCH=(--device cpu --sizes tiny --ops interpolate,grad_norm_penalty --budget 0.05 --max-wait 0 --no-plots)
else
    BENCH=(--device cuda --quick)
fi
# shellcheck disable=SC2206
EXTRA=(${GPU_CHECK_BENCH_ARGS:-})
stage bench "${GPU_CHECK_BENCH_TIMEOUT:-110}" "$OUT/bench.log" \
    "$PY" -m fastgan bench "${BENCH[@]}" "${EXTRA[@]}" --name "$NAME" --out "$OUT"

# 4. the rest of the suite (CPU parts included; CI runs it without a GPU), only when asked for:
#    it does not fit in the overall limit
if [ "$DRY" != "1" ] && [ "${GPU_CHECK_FULL_SUITE:-0}" = "1" ]; then
    TOTAL=$((SECONDS - T0 + ${GPU_CHECK_SUITE_TIMEOUT:-600} + 10))
    stage tests-all "${GPU_CHECK_SUITE_TIMEOUT:-600}" "$OUT/pytest-all.log" \
        "$PY" -m pytest -q -p no:cacheprovider tests/ -k "not (cuda or triton)" --junitxml "$OUT/pytest-all.xml"
fi

log "took $((SECONDS - T0))s in all"
log "done: $([ $status -eq 0 ] && echo 'every stage passed' || echo 'some stage FAILED')"
exit $status
