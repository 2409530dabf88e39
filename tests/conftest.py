"""Test-session setup shared by every test module.

Without a GPU, the ``triton`` backend is tested in Triton's interpreter on CPU tensors: the
interpreter has to be switched on before fastgan (and its Triton kernels) are imported, so it is
done here, first. On a machine with a GPU nothing is changed and the same tests run the Triton
kernels on the GPU for real.

The repository root goes first on ``PYTHONPATH``, so that the tests' subprocesses (``python -m
fastgan ...``, ``python -c "import fastgan ..."``) import the fastgan under test also where it is
built in place and not pip-installed (``setup.py build_ext --inplace``, as in
``benchmarks/cuda_build_check.sh`` and ``benchmarks/gpu_check.sh``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join([ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])

if "TRITON_INTERPRET" not in os.environ and importlib.util.find_spec("triton") is not None:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"


def pytest_collection_modifyitems(config, items):
    """In Triton's interpreter (about 1000× slower than torch), the ``triton`` backend runs the
    backend-parametrised suites in fp32 and one half type (bf16); fp16 and fp64 cases of the
    parametrised dtype are deselected there (gradcheck still runs the kernels in fp64). On a GPU
    every dtype runs."""
    import torch

    from fastgan.backends import triton_interpreter

    if not triton_interpreter():
        return

    slow = {torch.float16, torch.float64}
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("backend") == "triton" and params.get("dtype") in slow:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
