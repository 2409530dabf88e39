"""The one comparison of a result with its float64 reference: :func:`compare` (a verdict) and
:func:`assert_close` (the same rule, raising ``AssertionError``), used by ``fastgan check``, the
benchmark's check and the tests.

The rule, per element (``tol = atol + rtol·|expected|``, ``atol = atol_scaled·scale + floor``,
``scale = max(scale, max|expected|)`` over the finite expected values; rows in
:mod:`fastgan.testing.tolerances`):

* ``|actual − expected| <= tol`` for a finite expected value;
* NaN exactly where the expected value is NaN, and an infinity exactly where it is the same
  infinity (NaN in, NaN out; a result is never "close" to NaN or to an infinity);
* an expected value beyond the dtype's range is the infinity it rounds to (an fp16 result of an
  exact 1e5 is ``inf``, and a finite result is wrong);
* an expected value below the dtype's smallest normal number (``finfo.tiny``) is met by a
  result within ``tiny`` of it (flush-to-zero and subnormal rounding are not defects).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from fastgan.testing.tolerances import DTYPE_NAMES, Tolerance
from fastgan.testing.tolerances import tolerance as lookup

F64 = torch.float64


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The verdict of :func:`compare`: ``ok``; the largest ``|actual − expected|`` over the
    elements finite in both (``max_error``), that error as a fraction of its tolerance
    (``ratio``: > 1 fails), the ``scale`` used, and ``message`` (why it failed, or None)."""

    ok: bool
    max_error: float
    ratio: float
    scale: float
    message: str | None = None

    def __bool__(self) -> bool:
        return self.ok


def _fail(message: str) -> Comparison:
    return Comparison(False, math.inf, math.inf, 0.0, message)


def compare(
    actual: torch.Tensor,
    expected: torch.Tensor,
    dtype: torch.dtype | None = None,
    *,
    tolerance: str | Tolerance | tuple[float, float, float] = "operator",
    scale: float = 0.0,
) -> Comparison:
    """``actual`` (a result in ``dtype``; default: its own dtype) against ``expected`` (the
    reference, usually float64) under the row ``tolerance`` of
    :data:`~fastgan.testing.TOLERANCES` (or a :class:`Tolerance`, or ``(rtol, atol_scaled,
    floor)``). ``scale`` raises the scale of the absolute tolerance above ``max|expected|``:
    the magnitude of the summed terms, for a sum of terms of both signs. Neither tensor is
    modified. A wrong shape or dtype fails."""
    if not isinstance(actual, torch.Tensor) or not isinstance(expected, torch.Tensor):
        return _fail(f"expected two tensors, got {type(actual).__name__} and {type(expected).__name__}")
    dtype = actual.dtype if dtype is None else dtype
    if actual.shape != expected.shape:
        return _fail(f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    if actual.dtype != dtype:
        return _fail(f"dtype {actual.dtype}, expected {dtype}")
    tol = lookup(tolerance, dtype)
    a = actual.detach().to("cpu", F64)
    e = expected.detach().to("cpu", F64)
    if dtype.is_floating_point:  # an exact value beyond the dtype's range rounds to an infinity
        rounded = e.to(dtype).to(F64)
        e = torch.where(torch.isinf(rounded) & torch.isfinite(e), rounded, e)
    finite = torch.isfinite(e)
    e_abs = e.abs()
    scale = max(scale, e_abs[finite].max().item() if bool(finite.any()) else 0.0)
    tol_t = tol.atol_scaled * scale + tol.floor + tol.rtol * e_abs
    diff = (a - e).abs()
    same = (a == e) | (a.isnan() & e.isnan())
    tiny = torch.finfo(dtype).tiny if dtype.is_floating_point else 0.0
    in_band = (e_abs < tiny) & (diff <= tiny)
    bad = ~(((diff <= tol_t) & finite) | same | in_band)
    both = finite & torch.isfinite(a)
    max_err = diff[both].max().item() if bool(both.any()) else 0.0
    ratio = (diff[both] / tol_t[both].clamp_min(1e-300)).max().item() if bool(both.any()) else 0.0
    if not bool(bad.any()):
        return Comparison(True, max_err, ratio, scale)
    flat = bad.flatten().nonzero()[0, 0]
    where = tuple(int(i) for i in torch.unravel_index(flat, bad.shape)) if bad.dim() else ()
    message = (
        f"{int(bad.sum())} of {e.numel()} values out of tolerance ({DTYPE_NAMES.get(dtype, dtype)}: "
        f"rtol={tol.rtol:g}, atol={tol.atol_scaled * scale + tol.floor:g}, scale {scale:.3g}); "
        f"max abs error {max_err:.3g}; first at {where}: got {a[where].item()!r}, expected {e[where].item()!r}"
    )
    return Comparison(False, max_err, max(ratio, 1.0 + 1e-9), scale, message)


def assert_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    dtype: torch.dtype | None = None,
    what: str = "result",
    *,
    tolerance: str | Tolerance | tuple[float, float, float] = "operator",
    scale: float = 0.0,
) -> None:
    """:func:`compare`, raising ``AssertionError("<what>: <why>")`` when it fails."""
    verdict = compare(actual, expected, dtype, tolerance=tolerance, scale=scale)
    if not verdict.ok:
        raise AssertionError(f"{what}: {verdict.message}")
