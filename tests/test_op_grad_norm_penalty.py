"""``grad_norm_penalty`` (docs/design.md §2): ``mean_b φ(‖g_b‖₂ − center)``, φ(t) = t² (or
``max(t, 0)²`` one-sided), per-sample norms in fp64 (docs/design.md §6).

Every backend against the reference (forward and the gradient, each dtype, shape, layout,
center and one-sidedness; random shapes, strides and values), the reference's own precision and
layout handling, the formula against float64 arithmetic written here, and the norm's range:
huge, tiny and fp64-limit norms."""

from __future__ import annotations


import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import fastgan

import kernel_cases as kc
from kernel_cases import BF16, F32, F64, HALF, backend_params, compiled_params, dev, dtype_params
from kernel_cases import close_to_formula as _close
from kernel_cases import cpu_tensors_only as _cpu_tensors_only
from kernel_cases import skip_unusable as _skip_unusable
from properties import (
    BACKEND_PARAMS,
    _assume_representable,
    _case,
    _place,
    _settings,
    check_case,
    common,
    max_numel,
    shapes,
    values,
)


# ---------------------------------------------- forward and every gradient against the reference
@pytest.mark.parametrize("one_sided", [False, True], ids=["two_sided", "one_sided"])
@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("spec", kc.GNP_SPECS, ids=kc.spec_id)
@compiled_params
def test_grad_norm_penalty_backend_matches_reference(backend, spec, one_sided, dtype):
    """A compiled backend's forward and gradients against the reference in float64 on the same
    rounded values, over every shape and layout."""
    _skip_unusable(backend)
    kc.check_against_reference(backend, kc.grad_norm_penalty_case(spec, dtype, one_sided, dev(backend)), f"{spec.id} one_sided={one_sided}")


@pytest.mark.parametrize("one_sided", [False, True], ids=["two_sided", "one_sided"])
@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("spec", kc.GNP_SPECS, ids=kc.spec_id)
def test_grad_norm_penalty_reference_precision_and_layout(spec, one_sided, dtype):
    """The reference itself in every dtype and layout against its float64 contiguous result:
    its precision (fp32 accumulation, one rounding) and its handling of strides. It compares the
    reference with itself, so it cannot catch a wrong formula: the formula tests below do."""
    backend = "reference"
    kc.check_against_reference(backend, kc.grad_norm_penalty_case(spec, dtype, one_sided, dev(backend)), f"{spec.id} one_sided={one_sided}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, *HALF])
@pytest.mark.parametrize("one_sided", [False, True])
@pytest.mark.parametrize("backend", backend_params)
def test_grad_norm_penalty_formula(backend, dtype, one_sided):
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        torch.manual_seed(2)
        # norms spread around 1 so both branches of the one-sided penalty occur
        g = (torch.randn(9, 2, 33, dtype=torch.float64) * torch.linspace(0.05, 0.4, 9, dtype=torch.float64)[:, None, None]).to(dtype)
        n = g.double().flatten(1).norm(dim=1)
        t = (n - 1.0).clamp_min(0) if one_sided else n - 1.0
        _close(fastgan.functional.grad_norm_penalty(g, 1.0, one_sided), (t**2).mean(), dtype)


@pytest.mark.parametrize("backend", backend_params)
def test_grad_norm_penalty_sums_half_inputs_in_a_wider_type(backend):
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        # 4096 elements of 0.01 in fp16: naive fp16 sums of squares lose digits; a wider sum does not
        # (the penalty's sums of squares are fp64 for every dtype: docs/design.md §6)
        g = torch.full((2, 4096), 0.01, dtype=torch.float16)
        expected = ((torch.tensor(0.01, dtype=torch.float16).double() ** 2 * 4096).sqrt() - 1) ** 2
        out = fastgan.functional.grad_norm_penalty(g, 1.0, False)
        torch.testing.assert_close(out.double(), expected, atol=1e-3, rtol=1e-3)

@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_grad_norm_penalty_property(backend):
    _skip_unusable(backend)
    device = kc.DEVICE[backend]

    @_settings(backend)
    @given(shape=shapes(max_numel(backend)), c=common, center=st.sampled_from([0.0, 0.5, 1.0, 2.5]), one_sided=st.booleans())
    def run(shape, c, center, one_sided):
        _assume_representable(backend, c["dtype"], c["regime"])
        g = kc.generator("grad_norm_penalty", shape, c["seed"])
        dtype = c["dtype"]
        grads = _place(values(shape, dtype, c["regime"], g, norms=True), dtype, c["layout"], device, g)
        case = _case("grad_norm_penalty", [grads], (center, one_sided), (), dtype, device, g)
        check_case(backend, case, f"shape={shape} center={center} one_sided={one_sided} {c}")

    run()

@pytest.mark.parametrize("dtype", [pytest.param(F32, id="f32"), pytest.param(BF16, id="bf16")])
@pytest.mark.parametrize("scale", [1e20, 1e30], ids=["norm1e20", "norm1e30"])
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_grad_norm_penalty_huge_norm_has_finite_gradient(backend, scale, dtype):
    """Per-sample norms above ~1.8e19 (fp32/bf16 inputs): an fp32 sum of squares would overflow,
    the norm would be inf and the gradient ``φ'(n − c) g / (B n)`` inf/inf = NaN — but the exact
    gradient, ``2 (1 − c/n) g / B``, is finite and representable (fastgan's sums are fp64:
    docs/design.md §6). The forward may be inf (the
    exact penalty exceeds the dtype's range); the gradient must match the float64 reference."""
    _skip_unusable(backend)
    g = torch.Generator().manual_seed(13)
    x = torch.randn(3, 40, generator=g, dtype=F64)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True) * scale
    grads = x.to(dtype).to(dev(backend)).requires_grad_(True)
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        out = fastgan.functional.grad_norm_penalty(grads, 1.0, False)
        (d,) = torch.autograd.grad(out, grads)
    x64 = grads.detach().to("cpu", F64).requires_grad_(True)
    exp = fastgan.backends._IMPLS["reference"]["grad_norm_penalty"](x64, 1.0, False)
    (d64,) = torch.autograd.grad(exp, x64)
    assert torch.isfinite(d64).all()
    assert torch.isfinite(d).all(), f"{backend}: NaN/inf gradient for per-sample norms ~{scale:g} (exact: finite, max {d64.abs().max().item():.3g})"
    kc.assert_matches(d, d64, dtype, f"{backend} grad_norm_penalty d/dgrads, norms ~{scale:g}")


@pytest.mark.parametrize("center", [1.0, 0.0])
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_grad_norm_penalty_tiny_norm_fp32(backend, center):
    """fp32 rows whose squares fall below fp32's normal range (norm ~1e-30, and a row of
    subnormal numbers): with center 1 the exact gradient is ``−2 g / (B n)``, of size ~1/B —
    not 0, which is what an fp32 sum of squares that underflows to 0 gives. (With center 0 the
    exact gradient is ~1e-30: any value within fp32's subnormal band passes.)"""
    _skip_unusable(backend)
    g = torch.Generator().manual_seed(17)
    x = torch.randn(3, 20, generator=g, dtype=F64)
    x = x / torch.linalg.vector_norm(x, dim=1, keepdim=True)
    x[0] *= 1e-30
    x[1] *= 1e-41  # subnormal fp32 numbers only
    grads = x.float().to(dev(backend)).requires_grad_(True)
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        out = fastgan.functional.grad_norm_penalty(grads, center, False)
        (d,) = torch.autograd.grad(out, grads)
    x64 = grads.detach().to("cpu", F64).requires_grad_(True)
    exp = fastgan.backends._IMPLS["reference"]["grad_norm_penalty"](x64, center, False)
    (d64,) = torch.autograd.grad(exp, x64)
    tiny = torch.finfo(F32).tiny
    d_cpu = d.detach().to("cpu", F64)
    ok = ((d_cpu - d64).abs() <= 2e-5 * d64.abs().max() + 1e-6 * d64.abs()) | ((d64.abs() < tiny) & (d_cpu.abs() <= tiny))
    assert ok.all(), f"{backend}: gradient of tiny-norm rows {d_cpu[:2, :3].tolist()}, exact {d64[:2, :3].tolist()}"
    kc.assert_matches(out, exp, F32, f"{backend} grad_norm_penalty forward, tiny norms")


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_grad_norm_penalty_fp64_norm_limit(backend):
    """The documented limit (docs/errors.md, Numerical range): fp64 rows keep fp64 squares, so a
    norm of 1e-150 is exact, one of 1e-160 (a subnormal sum of squares) is inexact, and one of
    1e-170 (every square 0) has the zero-norm gradient 0 — while the loss stays right."""
    _skip_unusable(backend)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 20, generator=g, dtype=F64)
    unit = x / torch.linalg.vector_norm(x, dim=1, keepdim=True)
    scales = torch.tensor([1e-150, 1e-160, 1e-170], dtype=F64)
    grads = (unit * scales[:, None]).to(dev(backend)).requires_grad_(True)
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        out = fastgan.functional.grad_norm_penalty(grads, 1.0, False)
        (d,) = torch.autograd.grad(out, grads)
    d = d.cpu()
    torch.testing.assert_close(out.cpu(), torch.tensor(1.0, dtype=F64))  # mean of (0 - 1)^2
    exact = -2.0 * unit / 3  # d/dg of (n - 1)^2 / B at n -> 0: 2 (n - 1) g / (B n)
    torch.testing.assert_close(d[0], exact[0], rtol=1e-12, atol=0)
    assert not torch.allclose(d[1], exact[1], rtol=1e-6, atol=0)  # inexact: the stated limit
    assert torch.equal(d[2], torch.zeros_like(d[2]))


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_penalty_of_a_value_below_fp32_range_rounds_to_zero(backend):
    """Found by the property tests: center 0, one subnormal fp32 gradient: the exact penalty
    (~1e-79) is below fp32's range; 0 is its correctly rounded value, gradient within fp32's
    subnormal band of the exact one."""
    _skip_unusable(backend)
    g = torch.tensor([3e-40], dtype=F32, device=dev(backend)).requires_grad_(True)
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        out = fastgan.functional.grad_norm_penalty(g, 0.0, False)
        (d,) = torch.autograd.grad(out, g)
    assert out.item() == 0.0 and abs(d.item() - 2 * 3e-40) <= torch.finfo(F32).tiny
