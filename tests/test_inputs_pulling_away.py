"""The pulling-away term is scale-free (issue "Every PyTorch transform, every backend", item 2).

Cosines do not depend on the rows' magnitudes, so neither may PT: for embeddings scaled by any
power of ten that the dtype represents (1e-30 … 1e30 in fp32 and bf16, what fits in fp16), PT must
match a float64 oracle of the same (rounded) values. A zero row is orthogonal to every row (cos =
0), with a finite gradient; NaN gives NaN.
"""

from __future__ import annotations

import math

import pytest
import torch

import fastgan.functional as FG
from fastgan.testing import TOLERANCES

#: tolerance relative to the oracle: the fp32 computation (~1e-6) plus one rounding of the result
#: to the output dtype (half an ulp)
#: one rounding of an exactly known value: the ``exact_value`` row of fastgan.testing's one table
RTOL = {dt: t.rtol for dt, t in TOLERANCES["exact_value"].items()}


def oracle(e: torch.Tensor) -> float:
    """PT in float64 by the definition, rows normalised with a norm computed after scaling
    (so the oracle itself neither overflows nor underflows); zero rows have cosines 0."""
    s = e.detach().to(torch.float64).reshape(e.shape[0], -1)
    m = s.abs().amax(dim=1, keepdim=True)
    s = s / torch.where(m > 0, m, 1.0)
    n = s.norm(dim=1, keepdim=True)
    s = s / torch.where(n > 0, n, 1.0)
    n_rows = s.shape[0]
    total = 0.0
    for i in range(n_rows):
        for j in range(n_rows):
            if i != j:
                total += float(s[i] @ s[j]) ** 2
    return total / (n_rows * (n_rows - 1))


def _representable(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all()) and bool((x.abs().amax(dim=1) > 0).all())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64], ids=str)
@pytest.mark.parametrize("shape", [(5, 8), (3, 2, 3), (7, 1)])
def test_pt_matches_float64_oracle_at_every_scale(dtype, shape):
    g = torch.Generator().manual_seed(1)
    base = torch.randn(*shape, generator=g, dtype=torch.float64)
    tested = 0
    for exponent in range(-30, 31):
        x = (base * 10.0**exponent).to(dtype)
        if not _representable(x):
            continue  # beyond the dtype's range (fp16 beyond ~1e-5 … 6e4)
        got = FG.pulling_away_term(x)
        assert got.dtype == dtype
        expected = oracle(x)
        assert math.isfinite(got.item())
        assert abs(got.item() - expected) <= RTOL[dtype] * max(expected, 1e-3), (exponent, got.item(), expected)
        tested += 1
    assert tested >= (9 if dtype == torch.float16 else 55)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_pt_of_parallel_rows_is_one_at_any_scale(dtype):
    """The issue's cases: equal rows are parallel, PT = 1, however large or small."""
    big = torch.finfo(dtype).max / 4
    tiny = torch.finfo(dtype).tiny  # smallest normal number
    for value in (1.0, big, tiny, tiny / 8, 1e20 if dtype != torch.float16 else 1e4):
        x = torch.full((3, 4), value, dtype=torch.float32).to(dtype)
        assert FG.pulling_away_term(x).item() == 1.0, value


def test_issue_examples():
    assert FG.pulling_away_term(torch.ones(3, 4) * 1e20).item() == 1.0
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0)) * 1e-25
    assert abs(FG.pulling_away_term(x).item() - oracle(x)) < 1e-6
    assert FG.pulling_away_term(x).item() > 0.05


def test_rows_of_very_different_scales():
    """Each row is scaled on its own: one row at 1e30 and one at 1e-30 in the same batch."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    x[0] *= 1e30
    x[1] *= 1e-30
    x32 = x.float()
    assert abs(FG.pulling_away_term(x32).item() - oracle(x32)) <= 2e-6 * oracle(x32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_zero_row_is_orthogonal_and_has_a_finite_gradient(dtype):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 5, generator=g).to(dtype)
    x[2] = 0
    x.requires_grad_(True)
    pt = FG.pulling_away_term(x)
    assert torch.isfinite(pt)
    # the zero row's cosines are 0: PT is the other rows' sum over N(N-1) with N = 4
    others = x.detach()[[0, 1, 3]]
    expected = oracle(others) * (3 * 2) / (4 * 3)
    assert abs(pt.item() - expected) <= RTOL[dtype] * expected
    (grad,) = torch.autograd.grad(pt, x)
    assert torch.isfinite(grad).all()
    assert torch.equal(grad[2], torch.zeros_like(grad[2]))
    # all rows zero: PT = 0, gradient 0
    z = torch.zeros(3, 4, dtype=dtype, requires_grad=True)
    pt = FG.pulling_away_term(z)
    assert pt.item() == 0.0
    (grad,) = torch.autograd.grad(pt, z)
    assert torch.equal(grad, torch.zeros_like(z))


def test_gradient_matches_float64_at_extreme_scales():
    """The gradient of PT w.r.t. a row scaled by s is the unit-scale gradient divided by s:
    finite and right at 1e-20 and 1e20 in fp32 (no overflow or underflow inside)."""
    g = torch.Generator().manual_seed(4)
    base = torch.randn(4, 5, generator=g, dtype=torch.float64)
    ref = base.clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(FG.pulling_away_term(ref), ref)
    for scale in (1e-20, 1e20):
        x = (base * scale).float().requires_grad_(True)
        (gx,) = torch.autograd.grad(FG.pulling_away_term(x), x)
        assert torch.isfinite(gx).all()
        torch.testing.assert_close((gx.double() * scale), g_ref, rtol=1e-4, atol=1e-6)


def test_nan_in_nan_out():
    x = torch.randn(4, 5)
    x[1, 2] = float("nan")
    assert torch.isnan(FG.pulling_away_term(x))
    x = torch.randn(4, 5)
    x[0, 0] = float("inf")
    assert torch.isnan(FG.pulling_away_term(x))


def test_input_not_modified():
    x = torch.randn(4, 5) * 1e30
    before = x.clone()
    FG.pulling_away_term(x)
    assert torch.equal(x, before)
