#!/usr/bin/env bash
# fastgan's CUDA build check, for a machine WITHOUT a GPU (not part of CI: it downloads about 5 GB).
#
# It builds the extension with its CUDA kernels against the GPU machine's own software and runs the
# test suite under it:
#   1. a throwaway venv in DIR (default /tmp/fastgan-cuda-venv; reused when it is already there)
#      with torch==2.11.0 from the package registry (the CUDA 13.0 build, about 5 GB with its
#      nvidia-* dependencies; triton 3.6 comes with it), setuptools>=70, numpy<2.3 (Triton 3.6's
#      interpreter fails with numpy 2.4), ninja, and the test extra of setup.py;
#   2. a copy of this working tree (tracked and untracked files, not the ignored build outputs) in
#      DIR/fastgan-src, built there with
#        CUDA_HOME=/usr/local/cuda TORCH_CUDA_ARCH_LIST=9.0 python setup.py build_ext --inplace
#      (ninja, MAX_JOBS jobs: by default ninja's own);
#   3. `python -m fastgan info`, which must report `cuda_kernels: True`;
#   4. the test suite there (`python -m pytest -q`, or PYTEST_ARGS). There is no GPU, so
#      tests/conftest.py switches Triton's interpreter on (TRITON_INTERPRET=1) and the cuda
#      backend's tests skip; the CUDA kernels themselves are checked by tests/test_cuda_build.py
#      (nvcc for sm_90, the glue against torch 2.11's real CUDA headers, the kernels on a CPU
#      stand-in for CUDA).
# Run it before landing any change to csrc/ or fastgan/triton/. Logs and a summary go to DIR/logs;
# the exit status is 0 when the build, the cuda_kernels check and the tests all passed.
#
#   bash benchmarks/cuda_build_check.sh [DIR]
#
# Run it in the foreground: started in the background (nohup ... &), Python inherits SIGINT
# ignored, and tests/test_cli_resume.py's Ctrl-C test, which expects Python's default handler, fails.
#
# Environment: PYTHON (the interpreter for the venv, default python3), CUDA_HOME (default
# /usr/local/cuda: nvcc and the CUDA headers), TORCH_CUDA_ARCH_LIST (default 9.0, the H100/H200),
# MAX_JOBS, PYTEST_ARGS (default "-q"; e.g. "-q -x" or "-q tests/test_cuda_build.py"),
# CUDA_CHECK_TORCH (default torch==2.11.0).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

DIR=${1:-/tmp/fastgan-cuda-venv}
PY=${PYTHON:-python3}
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
TORCH_REQ=${CUDA_CHECK_TORCH:-torch==2.11.0}
read -r -a PYTEST_ARGV <<< "${PYTEST_ARGS:--q}"

mkdir -p "$DIR/logs"
LOGS=$(cd "$DIR/logs" && pwd)
SUMMARY="$LOGS/summary.log"
: > "$SUMMARY"
log() { echo "[cuda_build_check $(date -u +%H:%M:%S)] $*" | tee -a "$SUMMARY"; }
fail() { log "FAILED: $*"; exit 1; }

if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    fail "no nvcc in CUDA_HOME=$CUDA_HOME (set CUDA_HOME to a CUDA toolkit with nvcc and headers)"
fi

# 1. the venv
if [ ! -x "$DIR/bin/python" ]; then
    log "creating the venv $DIR"
    "$PY" -m venv "$DIR" || fail "python -m venv $DIR"
fi
VPY="$DIR/bin/python"
# the test extra, as setup.py declares it (without the triton requirement: torch brings its own)
mapfile -t TEST_EXTRA < <("$PY" - "$REPO/setup.py" <<'EOF'
import ast, sys
tree = ast.parse(open(sys.argv[1], encoding="utf-8").read())
for node in ast.walk(tree):
    if isinstance(node, ast.keyword) and node.arg == "extras_require":
        extras = ast.literal_eval(node.value)
        print("\n".join(r for r in extras["test"] if not r.startswith("triton")))
EOF
)
[ "${#TEST_EXTRA[@]}" -gt 0 ] || fail "could not read the test extra from setup.py"
start=$SECONDS
log "installing $TORCH_REQ, setuptools>=70, numpy<2.3, ninja, ${TEST_EXTRA[*]} (about 5 GB the first time)"
"$VPY" -m pip install --disable-pip-version-check "$TORCH_REQ" "setuptools>=70" "numpy<2.3" ninja \
    "${TEST_EXTRA[@]}" > "$LOGS/pip.log" 2>&1 || { tail -n 20 "$LOGS/pip.log"; fail "pip install (see $LOGS/pip.log)"; }
log "venv ready in $((SECONDS - start)) s: $("$VPY" -c 'import torch, triton, numpy; print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}, numpy {numpy.__version__}")')"

# 2. a copy of the working tree, built in place
SRC="$DIR/fastgan-src"
rm -rf "$SRC"
mkdir -p "$SRC"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
    | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$SRC" || fail "copying the working tree to $SRC"
cd "$SRC" || fail "cd $SRC"
log "building in $SRC: CUDA_HOME=$CUDA_HOME TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=${MAX_JOBS:-unset} python setup.py build_ext --inplace"
start=$SECONDS
"$VPY" setup.py build_ext --inplace > "$LOGS/build.log" 2>&1 || { tail -n 40 "$LOGS/build.log"; fail "the build (see $LOGS/build.log)"; }
BUILD_S=$((SECONDS - start))
log "build passed in ${BUILD_S} s"

# 3. the CUDA kernels are in the build
"$VPY" -m fastgan info > "$LOGS/info.txt" 2>&1
cat "$LOGS/info.txt" | tee -a "$SUMMARY"
"$VPY" -m fastgan info --json > "$LOGS/info.json" 2>> "$LOGS/info.txt"
if ! "$VPY" -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))['extension']['cuda_kernels'] is True else 1)" "$LOGS/info.json"; then
    fail "fastgan info does not report cuda_kernels: True"
fi
log "fastgan info: cuda_kernels True"

# 4. the suite
log "tests: python -m pytest ${PYTEST_ARGV[*]} (log: $LOGS/pytest.log)"
start=$SECONDS
"$VPY" -m pytest "${PYTEST_ARGV[@]}" -p no:cacheprovider > "$LOGS/pytest.log" 2>&1
rc=$?
tail -n 40 "$LOGS/pytest.log" | grep -E "^(FAILED|ERROR)|passed|failed|error" | sed 's/^/    /' | tee -a "$SUMMARY"
log "tests: exit $rc after $((SECONDS - start)) s"
log "done: $([ $rc -eq 0 ] && echo "the CUDA build (${BUILD_S} s), cuda_kernels and the tests passed" || echo 'some tests FAILED')"
exit $rc
