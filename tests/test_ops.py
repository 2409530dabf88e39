"""The four operators of docs/design.md §2 called directly: every kind, dtypes (fp16/bf16 accumulate
in fp32), output shapes and dtypes, against float64 formulas written here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import fastgan

HALF = [torch.float16, torch.bfloat16]
# (dtype, atol, rtol) for results rounded to the output dtype once
TOL = {
    torch.float64: (1e-12, 1e-12),
    torch.float32: (1e-6, 1e-5),
    torch.float16: (1e-3, 2e-3),
    torch.bfloat16: (8e-3, 1.6e-2),
}


def _close(actual, expected, dtype):
    atol, rtol = TOL[dtype]
    assert actual.dtype == dtype
    torch.testing.assert_close(actual.double(), expected.double(), atol=atol, rtol=rtol)


KIND_TERMS = {  # (t_real, t_fake) in float64, written from docs/design.md §2 (the kinds table)
    "bce": (lambda x: torch.log1p(torch.exp(-x)), lambda x: torch.log1p(torch.exp(x))),
    "wgan": (lambda x: -x, lambda x: x),
    "lsgan": (lambda x: 0.5 * (x - 0.75) ** 2, lambda x: 0.5 * (x + 0.25) ** 2),
    "hinge": (lambda x: torch.clamp(1.5 - x, min=0), lambda x: torch.clamp(1.5 + x, min=0)),
    "margin": (lambda x: x, lambda x: torch.clamp(1.5 - x, min=0)),
}
PARAMS = dict(real_target=0.75, fake_target=-0.25, margin=1.5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, *HALF])
@pytest.mark.parametrize("kind", sorted(KIND_TERMS))
@pytest.mark.parametrize("shape", [(1,), (7, 1), (3, 1, 5, 4)])
def test_adversarial_loss_kinds(kind, dtype, shape):
    torch.manual_seed(0)
    real, fake = (torch.randn(shape, dtype=torch.float64) * 2).to(dtype), (torch.randn(shape, dtype=torch.float64) * 2).to(dtype)
    tr, tf = KIND_TERMS[kind]
    expected = tr(real.double()).mean() + tf(fake.double()).mean()
    out = fastgan.ops.adversarial_loss(real, fake, kind, **PARAMS)
    assert out.shape == ()
    _close(out, expected, dtype)
    # either side may be left out
    _close(fastgan.ops.adversarial_loss(real, None, kind, **PARAMS), tr(real.double()).mean(), dtype)
    _close(fastgan.ops.adversarial_loss(None, fake, kind, **PARAMS), tf(fake.double()).mean(), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, *HALF])
def test_interpolate_dtypes(dtype):
    torch.manual_seed(1)
    real, fake = torch.randn(5, 3, 7, dtype=dtype), torch.randn(5, 3, 7, dtype=dtype)
    alpha = torch.rand(5, dtype=dtype)
    out = fastgan.ops.interpolate(real, fake, alpha)
    a = alpha.double()[:, None, None]
    _close(out, fake.double() + a * (real.double() - fake.double()), dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, *HALF])
@pytest.mark.parametrize("one_sided", [False, True])
def test_grad_norm_penalty_dtypes(dtype, one_sided):
    torch.manual_seed(2)
    # norms spread around 1 so both branches of the one-sided penalty occur
    g = (torch.randn(9, 2, 33, dtype=torch.float64) * torch.linspace(0.05, 0.4, 9, dtype=torch.float64)[:, None, None]).to(dtype)
    n = g.double().flatten(1).norm(dim=1)
    t = (n - 1.0).clamp_min(0) if one_sided else n - 1.0
    _close(fastgan.ops.grad_norm_penalty(g, 1.0, one_sided), (t**2).mean(), dtype)


def test_grad_norm_penalty_sums_half_inputs_in_a_wider_type():
    # 4096 elements of 0.01 in fp16: naive fp16 sums of squares lose digits; a wider sum does not
    # (the penalty's sums of squares are fp64 for every dtype: docs/design.md §6)
    g = torch.full((2, 4096), 0.01, dtype=torch.float16)
    expected = ((torch.tensor(0.01, dtype=torch.float16).double() ** 2 * 4096).sqrt() - 1) ** 2
    out = fastgan.ops.grad_norm_penalty(g, 1.0, False)
    torch.testing.assert_close(out.double(), expected, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, *HALF])
@pytest.mark.parametrize("p", [1, 2])
def test_reconstruction_error_dtypes(dtype, p):
    torch.manual_seed(3)
    x, r = torch.randn(6, 4, 9, dtype=dtype), torch.randn(6, 4, 9, dtype=dtype)
    out = fastgan.ops.reconstruction_error(x, r, p)
    assert out.shape == (6,)
    _close(out, ((x.double() - r.double()).abs() ** p).flatten(1).mean(1), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, *HALF])
def test_half_gradients_close_to_fp32(dtype):
    """Gradients of the operators in half precision stay within the dtype's tolerance of fp32."""
    torch.manual_seed(4)
    base = torch.randn(4, 3, 5, 5)
    for fn in (
        lambda t: fastgan.ops.grad_norm_penalty(t, 1.0, False),
        lambda t: fastgan.ops.reconstruction_error(t, torch.zeros_like(t), 2).sum(),
        lambda t: fastgan.ops.adversarial_loss(t, t * 0.5, "bce"),
    ):
        x32 = base.clone().requires_grad_(True)
        (g32,) = torch.autograd.grad(fn(x32), x32)
        xh = base.to(dtype).requires_grad_(True)
        (gh,) = torch.autograd.grad(fn(xh), xh)
        assert gh.dtype == dtype
        atol, rtol = TOL[dtype]
        torch.testing.assert_close(gh.float(), g32, atol=atol * 4, rtol=rtol * 4)


def test_nan_propagates():
    x = torch.randn(3, 4)
    x[1, 2] = float("nan")
    assert torch.isnan(fastgan.ops.grad_norm_penalty(x, 1.0, False))
    rec = fastgan.ops.reconstruction_error(x, torch.zeros_like(x), 1)
    assert torch.isnan(rec[1]) and torch.isfinite(rec[[0, 2]]).all()
    assert torch.isnan(fastgan.ops.adversarial_loss(x, None, "hinge"))
    assert torch.isnan(fastgan.ops.interpolate(x, torch.zeros_like(x), torch.rand(3))[1, 2])


def test_zero_norm_sample_has_finite_zero_gradient():
    g = torch.randn(3, 6, dtype=torch.float64)
    g[1] = 0
    g.requires_grad_(True)
    for one_sided in (False, True):
        (dg,) = torch.autograd.grad(fastgan.ops.grad_norm_penalty(g, 1.0, one_sided), g)
        assert torch.isfinite(dg).all()
        assert torch.equal(dg[1], torch.zeros(6, dtype=torch.float64))


def test_ops_leave_inputs_unchanged_and_accept_noncontiguous():
    torch.manual_seed(5)
    base = torch.randn(4, 6, 5, 3)
    x = base.permute(0, 3, 1, 2)  # non-contiguous
    y = torch.randn(4, 3, 6, 5).to(memory_format=torch.channels_last)
    xs, ys = x.clone(), y.clone()
    a = torch.rand(4)
    torch.testing.assert_close(fastgan.ops.interpolate(x, y, a), y + a[:, None, None, None] * (x - y))
    torch.testing.assert_close(fastgan.ops.reconstruction_error(x, y, 1), (x - y).abs().flatten(1).mean(1))
    torch.testing.assert_close(fastgan.ops.grad_norm_penalty(x, 0.5, False), ((x.flatten(1).norm(dim=1) - 0.5) ** 2).mean())
    assert torch.equal(x, xs) and torch.equal(y, ys)


def test_softplus_is_stable_for_large_logits():
    x = torch.tensor([[-1e4], [1e4]], dtype=torch.float32)
    out = fastgan.ops.adversarial_loss(x, x, "bce")
    torch.testing.assert_close(out, (F.softplus(-x).mean() + F.softplus(x).mean()))
    assert torch.isfinite(out)
