"""``fastgan.testing`` itself: the comparison's rules, the tolerance table's lookup, the layouts
and the cases (the rest of the suite, ``fastgan check`` and the benchmark build on them)."""

from __future__ import annotations

import pytest
import torch

import fastgan.testing as ft
from fastgan.testing import layouts

F64, F32, F16 = torch.float64, torch.float32, torch.float16


def test_compare_passes_within_and_fails_beyond_the_row():
    e = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    tol = ft.TOLERANCES["operator"][F32]
    within = (e * (1 + 0.5 * tol.rtol)).float()
    beyond = (e * (1 + 4 * tol.rtol)).float()
    ok = ft.compare(within, e, F32)
    assert ok and ok.ok and ok.message is None and 0 < ok.ratio <= 1 and ok.scale == 2.0
    bad = ft.compare(beyond, e, F32)
    assert not bad and bad.ratio > 1 and "out of tolerance" in bad.message
    # the family row is looser: the same error passes there
    assert ft.compare(beyond, e, F32, tolerance="family")
    # the dtype defaults to the result's own; a tuple or a Tolerance is a row too
    assert ft.compare(within, e)
    assert ft.compare(within, e, F32, tolerance=tol.as_tuple()) and ft.compare(within, e, F32, tolerance=tol)


def test_compare_nan_infinities_shape_and_dtype():
    e = torch.tensor([float("nan"), float("inf"), 1.0], dtype=F64)
    assert ft.compare(torch.tensor([float("nan"), float("inf"), 1.0]), e, F32)
    assert not ft.compare(torch.tensor([0.0, float("inf"), 1.0]), e, F32)  # NaN lost
    assert not ft.compare(torch.tensor([float("nan"), float("-inf"), 1.0]), e, F32)  # wrong infinity
    assert not ft.compare(torch.tensor([float("nan"), float("inf"), float("nan")]), e, F32)  # NaN made up
    assert "shape" in ft.compare(torch.zeros(2), torch.zeros(3, dtype=F64), F32).message
    assert "dtype" in ft.compare(torch.zeros(3, dtype=F64), torch.zeros(3, dtype=F64), F32).message
    assert "tensors" in ft.compare(1.0, torch.zeros(1), F32).message
    # beyond fp16's range: the fp16 result is inf; below fp32's normal range: within tiny passes
    assert ft.compare(torch.tensor([float("inf")], dtype=F16), torch.tensor([1e5], dtype=F64), F16)
    assert not ft.compare(torch.tensor([6e4], dtype=F16), torch.tensor([1e5], dtype=F64), F16)
    assert ft.compare(torch.tensor([0.0]), torch.tensor([1e-50], dtype=F64), F32)
    # a scale raises the absolute tolerance (a sum of terms of both signs)
    assert not ft.compare(torch.tensor([1e-3]), torch.tensor([0.0], dtype=F64), F32)
    assert ft.compare(torch.tensor([1e-3]), torch.tensor([0.0], dtype=F64), F32, scale=1e3)


def test_assert_close_names_what_differs():
    ft.assert_close(torch.ones(2), torch.ones(2, dtype=F64), F32, "fine")
    with pytest.raises(AssertionError, match="my result: 1 of 2 values"):
        ft.assert_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0], dtype=F64), F32, "my result")


def test_tolerance_lookup_errors_name_the_argument():
    assert ft.tolerance("family", F16).floor == 2.0**-24
    with pytest.raises(ValueError, match="unknown row 'nope'"):
        ft.tolerance("nope", F32)
    with pytest.raises(ValueError, match="no entry"):
        ft.tolerance("paper", F16)
    with pytest.raises(ValueError, match="rtol, atol_scaled, floor"):
        ft.tolerance((1.0, 2.0), F32)
    with pytest.raises(TypeError, match="tolerance must be"):
        ft.tolerance(1e-3, F32)
    # every row: non-negative numbers, tighter for wider dtypes where both are given
    for row, by_dtype in ft.TOLERANCES.items():
        for t in by_dtype.values():
            assert min(t.rtol, t.atol_scaled, t.floor) >= 0 and (t.rtol or t.atol_scaled or t.floor), row
        if F64 in by_dtype and F32 in by_dtype:
            assert by_dtype[F64].as_tuple() <= by_dtype[F32].as_tuple(), row


@pytest.mark.parametrize("layout", list(ft.LAYOUTS) + list(layouts.ALIASES))
def test_layouts_keep_the_values(layout):
    t = torch.arange(2 * 3 * 4 * 5, dtype=F32).reshape(2, 3, 4, 5)
    if layout == "expanded":
        t = t[:1].expand(2, 3, 4, 5).clone()
    out = ft.arrange(t, layout)
    assert torch.equal(out, t) and out.untyped_storage().data_ptr() != t.untyped_storage().data_ptr()
    leaf = torch.randn(ft.leaf_shape((2, 3, 4, 5), layout), requires_grad=True)
    view = ft.lay(leaf, layout)
    assert view.shape == (2, 3, 4, 5)
    view.sum().backward()
    assert leaf.grad is not None
    if layout in ("strided", "sliced"):
        assert not out.is_contiguous() and torch.isnan(out._base).any()
    if layout == "channels_last":
        assert out.is_contiguous(memory_format=torch.channels_last)
    if layout == "expanded":
        assert out.stride(0) == 0


def test_layout_errors():
    with pytest.raises(ValueError, match="unknown layout"):
        ft.lay(torch.zeros(2), "diagonal")
    with pytest.raises(ValueError, match="4-D"):
        ft.arrange(torch.zeros(2, 3), "channels_last")
    with pytest.raises(ValueError, match="equal to the first"):
        ft.arrange(torch.arange(4.0).reshape(2, 2), "expanded")
    assert ft.lay(torch.zeros(2, 3), "channels_last").shape == (2, 3)  # not 4-D: as it is
    assert ft.leaf_shape((5,), "strided") == (10,)


def test_cases_cover_every_operator_variant_with_nonzero_inputs():
    seen = {}
    for op in ft.OP_NAMES:
        ids = []
        for name, case in ft.cases(op, F32):
            assert case.op == op and case.dtype == F32
            for a in case.args:
                if isinstance(a, torch.Tensor):
                    assert a.dtype == F32 and bool((a != 0).any())
            ids.append(name)
        assert len(ids) == len(set(ids))
        seen[op] = ids
    assert any("B1" in i for i in seen["interpolate"]) and any("long3chunks" in i for i in seen["reconstruction_error"])
    assert {i.split("-")[-1] for i in seen["grad_norm_penalty"]} == {"one_sided=False", "one_sided=True"}
    assert {i.split("-")[1] for i in seen["adversarial_loss"]} == set(ft.KINDS)
    assert ft.CHUNK < 3 * 100 * 70 and ft.specs("interpolate") is ft.ROW_SPECS
    with pytest.raises(ValueError, match="unknown operator"):
        list(ft.cases("softmax", F32))


def test_a_wrong_backend_result_fails_check_against_reference(monkeypatch):
    """check_against_reference can fail: a backend whose operator is off by 1 % is caught."""
    from fastgan import backends

    original = backends._IMPLS["reference"]["reconstruction_error"]
    name, case = next(ft.cases("reconstruction_error", F64))
    monkeypatch.setitem(backends._IMPLS["reference"], "reconstruction_error", lambda x, r, p: original(x, r, p) * 1.01)
    backends._RESOLVED.clear()
    try:
        with pytest.raises(AssertionError, match="forward"):
            ft.check_against_reference("reference", case, name)
    finally:
        monkeypatch.undo()
        backends._RESOLVED.clear()
    ft.check_against_reference("reference", case, name)
