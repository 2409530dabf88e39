"""``interpolate`` (docs/design.md §2): ``fake + α (real − fake)`` with one α per sample.

Every backend against the reference (forward and every gradient, each dtype, shape and layout;
random shapes, strides and values), the reference's own precision and layout handling, and the
formula itself against float64 arithmetic written here (on every backend, the reference
included)."""

from __future__ import annotations


import pytest
import torch
from hypothesis import given

import fastgan

import kernel_cases as kc
from kernel_cases import F64, HALF, backend_params, compiled_params, dev, dtype_params
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
@pytest.mark.parametrize("spec", kc.ROW_SPECS, ids=kc.spec_id)
@compiled_params
def test_interpolate_backend_matches_reference(backend, spec, dtype):
    """A compiled backend's forward and gradients against the reference in float64 on the same
    rounded values, over every shape and layout."""
    _skip_unusable(backend)
    kc.check_against_reference(backend, kc.interpolate_case(spec, dtype, dev(backend)), spec.id)


@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("spec", kc.ROW_SPECS, ids=kc.spec_id)
def test_interpolate_reference_precision_and_layout(spec, dtype):
    """The reference itself in every dtype and layout against its float64 contiguous result:
    its precision (fp32 accumulation, one rounding) and its handling of strides. It compares the
    reference with itself, so it cannot catch a wrong formula: the formula tests below do."""
    backend = "reference"
    kc.check_against_reference(backend, kc.interpolate_case(spec, dtype, dev(backend)), spec.id)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, *HALF])
@pytest.mark.parametrize("backend", backend_params)
def test_interpolate_formula(backend, dtype):
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        torch.manual_seed(1)
        real, fake = torch.randn(5, 3, 7, dtype=dtype), torch.randn(5, 3, 7, dtype=dtype)
        alpha = torch.rand(5, dtype=dtype)
        out = fastgan.functional.interpolate(real, fake, alpha)
        a = alpha.double()[:, None, None]
        _close(out, fake.double() + a * (real.double() - fake.double()), dtype)

@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_interpolate_property(backend):
    _skip_unusable(backend)
    device = kc.DEVICE[backend]

    @_settings(backend)
    @given(shape=shapes(max_numel(backend)), c=common)
    def run(shape, c):
        _assume_representable(backend, c["dtype"], c["regime"])
        g = kc.generator("interpolate", shape, c["seed"])
        dtype = c["dtype"]
        real = _place(values(shape, dtype, c["regime"], g), dtype, c["layout"], device, g)
        fake = _place(values(shape, dtype, c["regime"], g), dtype, c["layout2"], device, g)
        alpha = _place(torch.rand(shape[0], generator=g, dtype=F64), dtype, "contig", device, g)
        case = _case("interpolate", [real, fake, alpha], (), shape, dtype, device, g)
        check_case(backend, case, f"shape={shape} {c}")

    run()
