"""Strategies of the property tests (hypothesis), shared by the operator files
(``test_op_*.py``), the families (``test_families.py``) and the transforms (``test_transforms.py``):
every operator and family on every available backend against the float64 reference, over random
shapes, strides, dtypes and values.

* shapes: batch 1 to 300, up to 4 non-batch dimensions of sizes 1 to 13 (odd sizes likely),
  at most ``max_numel(backend)`` elements per tensor;
* strides: contiguous, transposed (any two dimensions swapped in memory, the batch included),
  sliced (every second element of the batch and the last dimension, the gaps filled with NaN),
  channels-last (4-D), expanded (stride 0 along one dimension);
* dtypes: fp32, fp64, bf16, fp16;
* values: normal, logits up to ±1e4, per-sample norms from 1e-15 to 1e18, rows of exact zeros,
  subnormal numbers mixed into rows, and magnitudes up to the dtype's range (a result beyond it
  must be the infinity it rounds to).

Operators are compared with ``fastgan.testing.compare`` under the ``operator`` tolerances
(forward and the gradient of every tensor input); the families under the ``family`` row.

Ranges and their reasons: per-sample gradient norms stay within [1e-15, 1e18] for fp32/bf16
inputs so that the penalty (n − center)² stays within fp32's range (the sums of squares are fp64
for every dtype: docs/design.md §6); the extremes beyond that range are regular tests
(``test_op_grad_norm_penalty.py``). Examples are derandomised (the same ones every run), and
every failure hypothesis found while writing these tests is a regular test.

A backend running in Triton's interpreter (~1000x slower than torch) gets fewer examples of at
most 4096 elements.
"""

from __future__ import annotations

import math

import torch
from hypothesis import HealthCheck, Phase, assume, settings
from hypothesis import strategies as st

from fastgan import check as fcheck

import kernel_cases as kc

F64 = torch.float64
BACKEND_PARAMS = kc.backend_params


def interpreted(backend: str) -> bool:
    return fcheck.interpreted(backend)


def max_numel(backend: str) -> int:
    return 4096 if interpreted(backend) else 20000


def max_examples(backend: str) -> int:
    return 10 if interpreted(backend) else 60


def _settings(backend: str):
    # no shrinking in the interpreter: a shrink there takes minutes (the failing example is
    # printed as found)
    phases = (Phase.explicit, Phase.reuse, Phase.generate) if interpreted(backend) else tuple(Phase)
    return settings(
        max_examples=max_examples(backend),
        deadline=None,
        derandomize=True,
        database=None,
        phases=phases,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def _assume_representable(backend: str, dtype: torch.dtype, regime: str) -> None:
    """Triton's interpreter emulates bfloat16 in numpy: it flushes bf16 subnormals to 0 on load
    and truncates on store (a one-line Triton kernel shows it; see
    ``test_edge_cases.py::test_bf16_subnormals``). On a GPU, Triton converts bf16 exactly."""
    assume(not (interpreted(backend) and dtype == torch.bfloat16 and regime == "denormal"))


# --------------------------------------------------------------------------------- strategies
LAYOUTS = ("contig", "transposed", "sliced", "channels_last", "expanded")
REGIMES = ("normal", "large", "tiny_norm", "huge_norm", "zero_rows", "denormal", "range_edge")


@st.composite
def shapes(draw, cap: int, min_batch: int = 1, max_dims: int = 4) -> tuple[int, ...]:
    ndim = draw(st.integers(0, max_dims))
    dims = [draw(st.one_of(st.sampled_from([1, 3, 5, 7, 9, 11, 13]), st.integers(1, 13))) for _ in range(ndim)]
    while math.prod(dims) * min_batch > cap and dims:
        dims[dims.index(max(dims))] = max(1, max(dims) // 2)
    per = max(1, math.prod(dims))
    batch = draw(st.integers(min_batch, max(min_batch, min(300, cap // per))))
    return (batch, *dims)


def _subnormal(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).tiny / 8  # a subnormal number of the dtype


def _max_magnitude(dtype: torch.dtype, norms: bool) -> float:
    """The largest magnitude drawn: near the dtype's range, or for per-sample norms (whose squares
    fastgan sums in fp32 for fp16/bf16/fp32) such that the norm stays below 1e18."""
    if norms and dtype in (torch.bfloat16, torch.float32):
        return 1e15
    return {torch.float16: 3.0e4, torch.bfloat16: 1e30, torch.float32: 1e30, F64: 1e100}[dtype]


def values(shape, dtype, regime, g, *, norms=False) -> torch.Tensor:
    """float64 values of ``shape`` in ``regime`` (see the module docstring); ``norms``: the
    values are gradients whose per-sample norms are taken."""
    x = torch.randn(shape, generator=g, dtype=F64)
    b = shape[0]
    if regime == "large":
        x = (torch.rand(shape, generator=g, dtype=F64) * 2 - 1) * 1e4
    elif regime in ("tiny_norm", "huge_norm"):
        lo, hi = (-15, -3) if regime == "tiny_norm" else (3, 18)
        if dtype == torch.float16:  # per element within fp16's range
            lo, hi = (-4, -1) if regime == "tiny_norm" else (2, 4)
        exps = lo + (hi - lo) * torch.rand(b, generator=g, dtype=F64)
        flat = x.reshape(b, -1)
        flat = flat / torch.linalg.vector_norm(flat, dim=1, keepdim=True).clamp_min(1e-300)
        if dtype == torch.float16 and regime == "huge_norm":
            flat = flat / flat.abs().amax(dim=1, keepdim=True).clamp_min(1e-300)  # max |x| = 10^e
        x = (flat * (10.0 ** exps)[:, None]).reshape(shape)
    elif regime == "zero_rows":
        keep = torch.rand(b, generator=g, dtype=F64) < 0.5
        if b > 1:
            keep[0] = True
        x = x * keep.to(F64).reshape((b,) + (1,) * (len(shape) - 1))
    elif regime == "denormal":
        mask = torch.rand(shape, generator=g, dtype=F64) < 0.3
        mask.reshape(b, -1)[:, 0] = False  # every row keeps a normal number (reshape: a view)
        x = torch.where(mask, torch.sign(x) * _subnormal(dtype) * torch.rand(shape, generator=g, dtype=F64).add(0.1), x)
    elif regime == "range_edge":
        x = x / x.abs().max().clamp_min(1e-300) * _max_magnitude(dtype, norms)
    return x


def arrange(t: torch.Tensor, layout: str, g: torch.Generator) -> torch.Tensor:
    """``t`` (already in the dtype under test) in memory layout ``layout``; for ``expanded`` the
    values are first made constant along one dimension (the caller reads the values back)."""
    if layout == "sliced":
        return kc.arrange(t, "strided")
    if layout == "channels_last" and t.dim() == 4:
        return kc.arrange(t, "channels_last")
    if layout == "transposed" and t.dim() >= 2:
        i, j = sorted(torch.randperm(t.dim(), generator=g)[:2].tolist())
        return t.transpose(i, j).contiguous().transpose(i, j)
    if layout == "expanded":
        dims = [d for d in range(t.dim()) if t.shape[d] > 1]
        if dims:
            d = dims[int(torch.randint(len(dims), (1,), generator=g))]
            return t.narrow(d, 0, 1).clone().expand(t.shape)
    return t.clone()


def _place(values64: torch.Tensor, dtype: torch.dtype, layout: str, device: str, g: torch.Generator):
    """(tensor in dtype / layout / device, float64 CPU copy of exactly its values)."""
    t = arrange(values64.to(dtype), layout, g).to(device) if device == "cpu" else arrange(values64.to(dtype).to(device), layout, g)
    return t, t.detach().to("cpu", F64).contiguous().clone()


common = st.fixed_dictionaries({
    "dtype": st.sampled_from(kc.DTYPES),
    "layout": st.sampled_from(LAYOUTS),
    "layout2": st.sampled_from(LAYOUTS),
    "regime": st.sampled_from(REGIMES),
    "seed": st.integers(0, 2**31 - 1),
})


# ------------------------------------------------------------------------------- comparison
def _case(op, tensors, params, out_shape, dtype, device, g) -> kc.Case:
    args, ref_args = [], []
    for t in tensors:
        if t is None:
            args.append(None)
            ref_args.append(None)
        else:
            args.append(t[0])
            ref_args.append(t[1])
    cot64 = kc.cotangent(out_shape, g).to(dtype)
    return kc.Case(op, args + list(params), ref_args + list(params), cot64.to(device), cot64.to(F64), dtype)


#: A backend's forward and every gradient against the float64 reference (fastgan.testing).
check_case = kc.check_against_reference
skip_unusable = kc.skip_unusable
_skip_unusable = kc.skip_unusable
