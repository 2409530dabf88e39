"""benchmarks/gpu_check.sh, the one script for a GPU machine: it parses, refuses clearly where
there is no GPU, and its stages are the ones the README promises. (Its full CPU dry run,
``GPU_CHECK_DRY_RUN=1``, rebuilds the extension and is run by hand, not in the suite.)"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def test_script_parses():
    bash = shutil.which("bash")
    if bash is None:  # pragma: no cover
        pytest.skip("bash is not installed")
    r = subprocess.run([bash, "-n", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_stages_build_test_and_bench_on_cuda():
    text = SCRIPT.read_text()
    assert "setup.py build_ext --inplace" in text
    assert '-k "cuda or triton"' in text
    assert "fastgan bench" in text and "--device cuda" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the script would run for real")
def test_without_gpu_it_refuses_clearly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("GPU_CHECK_DRY_RUN",)}
    r = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    assert "no CUDA device" in r.stderr and "GPU_CHECK_DRY_RUN=1" in r.stderr
    assert not (tmp_path / "out").exists(), "nothing is written when there is no GPU"
