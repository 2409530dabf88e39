"""The test suite's view of :mod:`fastgan.testing` (cases, layouts, the one comparison), plus
what only the tests need: the backends built here and the device each runs on.

Kept for the test files that import ``kernel_cases`` (``import kernel_cases as kc``); new tests
import :mod:`fastgan.testing` directly."""

from __future__ import annotations

import importlib.util

import torch

import fastgan
from fastgan.testing import (  # noqa: F401 (re-exported for the test files)
    ADV_CASES,
    ADV_PARAMS,
    ADV_SPECS,
    ARG_NAMES,
    CHUNK,
    GNP_SPECS,
    KINDS,
    OP_NAMES,
    PUBLIC,
    ROW_SPECS,
    TOLERANCES,
    Case,
    Spec,
    arrange,
    cancellation_scales,
    check_against_reference,
    cotangent,
    generator,
    logits,
    rows_with_norms,
)
from fastgan.testing.cases import (  # noqa: F401
    C3, L3, LONG, LONG3, ODD, P3, S3, SIDES, TARGET_NORMS, adversarial_loss_case, away_from,
    grad_norm_penalty_case, interpolate_case, op_module, reconstruction_error_case, spec_id,
)
from fastgan.testing.compare import assert_close
from fastgan.testing.run import run_backend, run_reference64, with_grad  # noqa: F401

F64, F32, F16, BF16 = torch.float64, torch.float32, torch.float16, torch.bfloat16
DTYPES = (F32, F64, BF16, F16)
HALF = (F16, BF16)  # the 16-bit dtypes
DTYPE_IDS = {F32: "f32", F64: "f64", BF16: "bf16", F16: "f16"}
#: The operator tolerances, ``dtype -> (rtol, atol_scaled, floor)`` (``TOLERANCES["operator"]``).
TOL = {dt: t.as_tuple() for dt, t in TOLERANCES["operator"].items()}
#: ``op -> the module's reference(...)``, the ground truth.
REFERENCE = {name: op_module(name).reference for name in OP_NAMES}


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str, scale: float = 0.0) -> None:
    """``actual`` (a backend's result in ``dtype``) against ``expected`` (the float64 reference)
    under the ``operator`` tolerances: :func:`fastgan.testing.assert_close`."""
    assert isinstance(actual, torch.Tensor), f"{what}: expected a tensor, got {type(actual).__name__}"
    assert_close(actual, expected, dtype, what, scale=scale)


#: Backends under test, and the device each runs on.
BACKENDS = fastgan.available_backends()  # also loads the compiled extension when it is built
#: whether the triton backend runs here for real (a GPU and triton; not the interpreter)
TRITON_ON_GPU = importlib.util.find_spec("triton") is not None and torch.cuda.is_available()
#: triton runs on the GPU when there is one, else in Triton's interpreter on CPU tensors (conftest.py).
DEVICE = {"reference": "cpu", "cpu": "cpu", "cuda": "cuda", "triton": "cuda" if torch.cuda.is_available() else "cpu"}
COMPILED = [b for b in BACKENDS if b != "reference"]
HAS_CUSTOM_OPS = hasattr(torch.ops.fastgan, "interpolate")


def fastgan_op_names() -> list[str]:
    """The public (not ``_``-prefixed) operators of the ``torch.ops.fastgan`` namespace."""
    names = {n.split("::", 1)[1].split(".", 1)[0] for n in torch._C._dispatch_get_all_op_names() if n.startswith("fastgan::")}
    for n in dir(torch.ops.fastgan):
        if isinstance(getattr(torch.ops.fastgan, n, None), torch._ops.OpOverloadPacket):
            names.add(n)
    return sorted(n for n in names if not n.startswith("_"))


# ----------------------------------------------------------------- parametrisation of the tests
import pytest  # noqa: E402

#: ``dtype`` parameters (ids f32, f64, bf16, f16).
dtype_params = [pytest.param(d, id=DTYPE_IDS[d]) for d in DTYPES]
#: every backend built here, the reference included.
backend_params = [pytest.param(b, id=b) for b in BACKENDS]
#: every backend but the reference, against which they are held (one skipped parameter where
#: none is built here).
compiled_params = pytest.mark.parametrize(
    "backend", [pytest.param(b, id=b) for b in COMPILED]
    or [pytest.param("-", marks=pytest.mark.skip(reason="only the reference backend is available here"))]
)


def dev(backend: str) -> str:
    """The device ``backend``'s tensors live on in these tests."""
    return DEVICE[backend]


def skip_unusable(backend: str) -> None:
    """Skip where ``backend``'s device is not present."""
    if dev(backend) == "cuda" and not torch.cuda.is_available():  # pragma: no cover
        pytest.skip("no CUDA device")


def cpu_tensors_only(backend: str) -> None:
    """The formula tests run on CPU tensors: skip a backend that does not take them here."""
    if dev(backend) != "cpu":  # pragma: no cover (a GPU machine)
        pytest.skip(f"{backend} runs on {dev(backend)} tensors")


def close_to_formula(actual, expected, dtype):
    """An operator's result against its float64 formula: the ``formula`` row of the one table."""
    assert actual.dtype == dtype
    assert_close(actual, expected.double(), dtype, "result", tolerance="formula")
