"""``reconstruction_error`` (docs/design.md §2): per-sample ``mean_i |x − recon|^p``, p ∈ {1, 2}.

Every backend against the reference (forward and both gradients, each dtype, shape, layout and
p; random shapes, strides and values), the reference's own precision and layout handling, and
the formula against float64 arithmetic written here (on every backend)."""

from __future__ import annotations


import pytest
import torch
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
@pytest.mark.parametrize("p", [1, 2], ids=["p1", "p2"])
@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("spec", kc.ROW_SPECS, ids=kc.spec_id)
@compiled_params
def test_reconstruction_error_backend_matches_reference(backend, spec, p, dtype):
    """A compiled backend's forward and gradients against the reference in float64 on the same
    rounded values, over every shape and layout."""
    _skip_unusable(backend)
    kc.check_against_reference(backend, kc.reconstruction_error_case(spec, dtype, p, dev(backend)), f"{spec.id} p={p}")


@pytest.mark.parametrize("p", [1, 2], ids=["p1", "p2"])
@pytest.mark.parametrize("dtype", dtype_params)
@pytest.mark.parametrize("spec", kc.ROW_SPECS, ids=kc.spec_id)
def test_reconstruction_error_reference_precision_and_layout(spec, p, dtype):
    """The reference itself in every dtype and layout against its float64 contiguous result:
    its precision (fp32 accumulation, one rounding) and its handling of strides. It compares the
    reference with itself, so it cannot catch a wrong formula: the formula tests below do."""
    backend = "reference"
    kc.check_against_reference(backend, kc.reconstruction_error_case(spec, dtype, p, dev(backend)), f"{spec.id} p={p}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, *HALF])
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("backend", backend_params)
def test_reconstruction_error_formula(backend, dtype, p):
    _cpu_tensors_only(backend)
    with fastgan.use_backend(backend):
        torch.manual_seed(3)
        x, r = torch.randn(6, 4, 9, dtype=dtype), torch.randn(6, 4, 9, dtype=dtype)
        out = fastgan.functional.reconstruction_error(x, r, p)
        assert out.shape == (6,)
        _close(out, ((x.double() - r.double()).abs() ** p).flatten(1).mean(1), dtype)

@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_reconstruction_error_property(backend):
    _skip_unusable(backend)
    device = kc.DEVICE[backend]

    @_settings(backend)
    @given(shape=shapes(max_numel(backend)), c=common, p=st.sampled_from([1, 2]))
    def run(shape, c, p):
        _assume_representable(backend, c["dtype"], c["regime"])
        g = kc.generator("reconstruction_error", shape, c["seed"])
        dtype = c["dtype"]
        x = _place(values(shape, dtype, c["regime"], g), dtype, c["layout"], device, g)
        r = _place(values(shape, dtype, c["regime"], g), dtype, c["layout2"], device, g)
        case = _case("reconstruction_error", [x, r], (p,), (shape[0],), dtype, device, g)
        check_case(backend, case, f"shape={shape} p={p} {c}")

    run()
