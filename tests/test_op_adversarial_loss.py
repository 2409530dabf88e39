"""``adversarial_loss`` (docs/design.md §2): ``mean(t_real(real)) + mean(t_fake(fake))`` for the
kinds bce, wgan, lsgan, hinge and margin.

Every backend against the reference (forward and both gradients, each kind, side, dtype, shape
and layout; random shapes, strides, values and parameters), the reference's own precision and
layout handling, the kinds' terms against float64 formulas written here from the design's table
(on every backend), the default parameters, and BCE at logits whose exp overflows."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import fastgan

import kernel_cases as kc
from kernel_cases import HALF, backend_params, compiled_params, dev, dtype_params
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
@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("kind", kc.KINDS)
@pytest.mark.parametrize("spec,side", [pytest.param(sp, side, id=f"{sp.id}-{side}") for sp, side in kc.ADV_CASES])
@compiled_params
def test_adversarial_loss_backend_matches_reference(backend, spec, kind, side, dtype):
    """A compiled backend's forward and gradients against the reference in float64 on the same
    rounded values, for every kind, side, shape and layout."""
    _skip_unusable(backend)
    case = kc.adversarial_loss_case(spec, dtype, kind, side, dev(backend))
    kc.check_against_reference(backend, case, f"{spec.id} kind={kind} {side}")


@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("kind", kc.KINDS)
@pytest.mark.parametrize("spec,side", [pytest.param(sp, side, id=f"{sp.id}-{side}") for sp, side in kc.ADV_CASES])
def test_adversarial_loss_reference_precision_and_layout(spec, kind, side, dtype):
    """The reference itself in every dtype and layout against its float64 contiguous result:
    its precision and its handling of strides (blind to the formula: see the formula tests)."""
    case = kc.adversarial_loss_case(spec, dtype, kind, side, "cpu")
    kc.check_against_reference("reference", case, f"{spec.id} kind={kind} {side}")


@pytest.mark.parametrize("kind", kc.KINDS)
@pytest.mark.parametrize("backend", backend_params)
def test_adversarial_loss_default_parameters(backend, kind):
    _skip_unusable(backend)
    g = kc.generator("defaults", kind)
    real = kc.away_from(torch.randn(9, 1, generator=g, dtype=kc.F64) * 2, (1.0, -1.0))
    fake = kc.away_from(torch.randn(9, 1, generator=g, dtype=kc.F64) * 2, (1.0, -1.0))
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        out = fastgan.functional.adversarial_loss(real.float().to(dev(backend)), fake.float().to(dev(backend)), kind)
    expected = kc.REFERENCE["adversarial_loss"](real.float().double(), fake.float().double(), kind, 1.0, 0.0, 1.0)
    kc.assert_matches(out, expected, kc.F32, f"{backend} adversarial_loss kind={kind} default parameters")


@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("backend", backend_params)
def test_bce_is_stable_for_large_logits(backend, dtype):
    """softplus(+-1e4) must not overflow; its derivative (a sigmoid) must stay finite."""
    _skip_unusable(backend)
    values = torch.tensor([[-1e4], [1e4], [-50.0], [50.0], [0.5], [-3.0]], dtype=kc.F64).to(dtype)
    case = kc.Case(
        "adversarial_loss",
        [values.to(dev(backend)), values.flip(0).to(dev(backend)), "bce", 1.0, 0.0, 1.0],
        [values.double(), values.flip(0).double(), "bce", 1.0, 0.0, 1.0],
        torch.tensor(1.25, dtype=dtype, device=dev(backend)),
        torch.tensor(1.25, dtype=kc.F64),
        dtype,
    )
    args, leaves, _, _ = kc.with_grad(case)
    out, grads = kc.run_backend(backend, case, args, leaves)
    assert torch.isfinite(out) and all(torch.isfinite(g).all() for g in grads)
    kc.check_against_reference(backend, case, "large logits")

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
@pytest.mark.parametrize("backend", backend_params)
def test_adversarial_loss_kinds_formula(backend, kind, dtype, shape):
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        torch.manual_seed(0)
        real, fake = (torch.randn(shape, dtype=torch.float64) * 2).to(dtype), (torch.randn(shape, dtype=torch.float64) * 2).to(dtype)
        tr, tf = KIND_TERMS[kind]
        expected = tr(real.double()).mean() + tf(fake.double()).mean()
        out = fastgan.functional.adversarial_loss(real, fake, kind, **PARAMS)
        assert out.shape == ()
        _close(out, expected, dtype)
        # either side may be left out
        _close(fastgan.functional.adversarial_loss(real, None, kind, **PARAMS), tr(real.double()).mean(), dtype)
        _close(fastgan.functional.adversarial_loss(None, fake, kind, **PARAMS), tf(fake.double()).mean(), dtype)


@pytest.mark.parametrize("backend", backend_params)
def test_softplus_formula_at_large_logits(backend):
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        x = torch.tensor([[-1e4], [1e4]], dtype=torch.float32)
        out = fastgan.functional.adversarial_loss(x, x, "bce")
        torch.testing.assert_close(out, (F.softplus(-x).mean() + F.softplus(x).mean()))
        assert torch.isfinite(out)

@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_adversarial_loss_property(backend):
    _skip_unusable(backend)
    device = kc.DEVICE[backend]
    params = st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 3))

    @_settings(backend)
    @given(
        shape=shapes(max_numel(backend) // 2), c=common, kind=st.sampled_from(kc.KINDS),
        side=st.sampled_from(kc.SIDES), other_batch=st.integers(1, 300),
        real_target=params, fake_target=params, margin=params.map(abs),
    )
    def run(shape, c, kind, side, other_batch, real_target, fake_target, margin):
        _assume_representable(backend, c["dtype"], c["regime"])
        g = kc.generator("adversarial_loss", shape, c["seed"])
        dtype = c["dtype"]
        per = math.prod(shape[1:])
        shape2 = (max(1, min(other_batch, (max_numel(backend) // 2) // per)),) + shape[1:]
        real = _place(values(shape, dtype, c["regime"], g), dtype, c["layout"], device, g) if side != "fake_only" else None
        fake = _place(values(shape2, dtype, c["regime"], g), dtype, c["layout2"], device, g) if side != "real_only" else None
        case = _case("adversarial_loss", [real, fake], (kind, real_target, fake_target, margin), (), dtype, device, g)
        check_case(backend, case, f"shape={shape}/{shape2} kind={kind} {side} targets={real_target},{fake_target} margin={margin} {c}")

    run()
