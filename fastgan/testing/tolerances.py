"""The one tolerance table of fastgan's correctness checks, and the chunk size they size their
"long" cases by.

Every check (``fastgan check``, the benchmark's check before timing, the test suite) compares a
result with the reference evaluated in float64 on the same, already rounded, input values, with
the pass rule of :func:`fastgan.testing.compare`::

    |actual − expected| <= atol + rtol·|expected|,   atol = atol_scaled·scale + floor

``scale`` is ``max|expected|`` over the compared tensor (for results that sum terms of both
signs, the magnitude of those terms), so tiny values such as the 1/N of a mean are judged
against the tensor's own size. A row of :data:`TOLERANCES` is a named use; it holds one
:class:`Tolerance` per dtype, with the reason for its numbers.

=================  ==========  ============  ============  ===========  =========================
row                float64     float32       bfloat16      float16      for
=================  ==========  ============  ============  ===========  =========================
``operator``       1e-10 /     2e-5 /        eps+2e-5 /    eps+2e-5 /   the four operators
                   1e-12       2e-6          2e-5          2e-5, 2**-24
``family``         1e-9        1e-4          8 eps         8 eps        the loss families
``paper``          1e-10,      1e-4,         —             —            fastgan against the
                   1e-12 abs   1e-6 abs                                 papers' equations
``formula``        1e-12,      1e-5,         1.6e-2,       2e-3,        an operator against its
                   1e-12 abs   1e-6 abs      8e-3 abs      1e-3 abs     formula in a test
``half_gradient``  —           4x formula    4x formula    4x formula   half vs fp32 gradients
``autocast``       —           —             4e-2 (of      1e-2 (of     families under autocast
                                             max|e|)       max|e|)      against fp32
``exact_value``    1e-12       2e-6          8e-3          1e-3         one rounding of an
                                                                        exactly known value
``benchmark_op``   1e-5 (of max|e|, every dtype)                        the benchmark's check
``benchmark_fam``  1e-4 (of max|e|, every dtype)                        (full losses)
=================  ==========  ============  ============  ===========  =========================

(``a / b`` is rtol / atol_scaled; ``a, b abs`` is rtol and an absolute floor; a single number is
rtol and atol_scaled.)
"""

from __future__ import annotations

import dataclasses

import torch

F64, F32, F16, BF16 = torch.float64, torch.float32, torch.float16, torch.bfloat16
#: The floating dtypes fastgan checks, with their short names (``fastgan check --dtype``).
DTYPES: dict[str, torch.dtype] = {"f32": F32, "f64": F64, "bf16": BF16, "f16": F16}
DTYPE_NAMES: dict[torch.dtype, str] = {v: k for k, v in DTYPES.items()}

#: Elements per parallel chunk of a sample's row in the CPU kernels (C++ ``kChunk``): a row longer
#: than this is split across threads, so the "long" cases exceed it (and three times it). Defined
#: here once for Python; the compiled extension reports its own value.
CHUNK = 16384


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """``|actual − expected| <= atol_scaled·scale + floor + rtol·|expected|`` (see the module)."""

    rtol: float
    atol_scaled: float
    floor: float = 0.0

    def as_tuple(self) -> tuple[float, float, float]:
        """``(rtol, atol_scaled, floor)``: the form of ``fastgan.check.OP_TOL``'s entries."""
        return (self.rtol, self.atol_scaled, self.floor)


def _eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps


def _same(value: float) -> dict[torch.dtype, Tolerance]:
    return {dt: Tolerance(0.0, value) for dt in (F64, F32, BF16, F16)}


#: ``row -> dtype -> Tolerance``. Why each row has its numbers:
#:
#: * ``operator``: an operator result is computed in fp32 (fp64 for fp64) and rounded once to its
#:   dtype — within one ulp (``eps``) — plus fp32 accumulation over rows of up to ~5e4 elements
#:   (~2e-5 relative); ``atol_scaled`` covers cancellation (``fake + α(real − fake)`` near 0);
#:   fp16 gradients of means over many elements fall into fp16's subnormal range (spacing 2**-24).
#: * ``family``: the families also run plain PyTorch in the input dtype (a critic's double
#:   backward for WGAN-GP and R1, the pulling-away term's cosines, sums of several rounded
#:   terms): several roundings of the dtype, 8 eps; 1e-4 in fp32, 1e-9 in fp64.
#: * ``paper``: fastgan (fp64 or fp32 throughout) against the float64 equations of the papers
#:   (``tests/paper.py``), which sum in another order: fp64 to 1e-10, fp32 to 1e-4 relative.
#: * ``formula``: an operator against its formula written out in float64 in a test, on small
#:   inputs; absolute ``floor`` (not scaled): two ulps of the dtype, relative and absolute.
#: * ``half_gradient``: a gradient computed from fp16/bf16 inputs against the one from the same
#:   values in fp32: four times ``formula`` (the inputs of the two differ by one rounding).
#: * ``exact_value``: a result rounded once from a value known exactly (the pulling-away term of
#:   constructed embeddings): about one ulp of the dtype, relative to the value.
#: * ``autocast``: a family trained under ``torch.autocast`` in this dtype against fp32, relative
#:   to the tensor's largest value (``rtol`` 0): the models round each value 4-6 times on its way
#:   through D and G (about twice that for gradients, a double backward for WGAN-GP): ~20 unit
#:   roundoffs, 4e-2 for bf16 (u = 2**-9), 1e-2 for fp16 (u = 2**-11).
#: * ``benchmark_op`` / ``benchmark_fam``: the benchmark's check before timing, relative to the
#:   tensor's largest magnitude (``rtol`` 0): loose enough for any provider's order of summation,
#:   tight against a wrong formula (a wrong sign or factor is off by O(1)).
#:
#: A wrong sign, a missing 1/B or a wrong index is off by far more than any row.
TOLERANCES: dict[str, dict[torch.dtype, Tolerance]] = {
    "operator": {
        F64: Tolerance(1e-10, 1e-12),
        F32: Tolerance(2e-5, 2e-6),
        BF16: Tolerance(_eps(BF16) + 2e-5, 2e-5),
        F16: Tolerance(_eps(F16) + 2e-5, 2e-5, 2.0**-24),
    },
    "family": {
        F64: Tolerance(1e-9, 1e-9),
        F32: Tolerance(1e-4, 1e-4),
        BF16: Tolerance(8 * _eps(BF16), 8 * _eps(BF16)),
        F16: Tolerance(8 * _eps(F16), 8 * _eps(F16), 2.0**-24),
    },
    "paper": {
        F64: Tolerance(1e-10, 0.0, 1e-12),
        F32: Tolerance(1e-4, 0.0, 1e-6),
    },
    "formula": {
        F64: Tolerance(1e-12, 0.0, 1e-12),
        F32: Tolerance(1e-5, 0.0, 1e-6),
        BF16: Tolerance(1.6e-2, 0.0, 8e-3),
        F16: Tolerance(2e-3, 0.0, 1e-3),
    },
    "half_gradient": {
        F32: Tolerance(4e-5, 0.0, 4e-6),
        BF16: Tolerance(6.4e-2, 0.0, 3.2e-2),
        F16: Tolerance(8e-3, 0.0, 4e-3),
    },
    "exact_value": {
        F64: Tolerance(1e-12, 0.0),
        F32: Tolerance(2e-6, 0.0),
        BF16: Tolerance(8e-3, 0.0),
        F16: Tolerance(1e-3, 0.0),
    },
    "autocast": {
        BF16: Tolerance(0.0, 4e-2),
        F16: Tolerance(0.0, 1e-2),
    },
    "benchmark_op": _same(1e-5),
    "benchmark_fam": _same(1e-4),
}


def tolerance(row: str | Tolerance | tuple[float, float, float], dtype: torch.dtype) -> Tolerance:
    """The :class:`Tolerance` of ``row`` (a name of :data:`TOLERANCES`, a Tolerance, or an
    ``(rtol, atol_scaled, floor)`` tuple) for ``dtype``."""
    if isinstance(row, Tolerance):
        return row
    if isinstance(row, tuple):
        if len(row) != 3:
            raise ValueError(f"tolerance must be (rtol, atol_scaled, floor), got {row!r}")
        return Tolerance(*(float(x) for x in row))
    if not isinstance(row, str):
        raise TypeError(f"tolerance must be a row name, a Tolerance or a tuple, got {type(row).__name__}")
    if row not in TOLERANCES:
        raise ValueError(f"tolerance: unknown row {row!r}; expected one of {', '.join(TOLERANCES)}")
    by_dtype = TOLERANCES[row]
    if dtype not in by_dtype:
        raise ValueError(f"tolerance: row {row!r} has no entry for {dtype}")
    return by_dtype[dtype]
