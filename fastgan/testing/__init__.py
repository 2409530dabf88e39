"""``fastgan.testing``: the cases, layouts, tolerances and the one comparison of fastgan's
correctness checks — public, so that a user's own check of a kernel or a loss can use them.

``fastgan check``, the benchmark's check before timing and fastgan's test suite all use this
package (docs/testing.md):

* :func:`compare` / :func:`assert_close` — a result against its float64 reference (NaN where
  the reference has NaN, infinities matching, overflow to infinity, the subnormal band);
* :data:`TOLERANCES` — the one tolerance table, a named row per use, per dtype, with reasons;
* :data:`LAYOUTS`, :func:`arrange`, :func:`lay` — the memory layouts every operator runs in;
* :func:`cases` — every shape / layout / variant case of an operator, and
  :func:`check_against_reference` to run one on a backend;
* :data:`CHUNK` — the CPU kernels' elements per parallel chunk, which the long cases exceed;
* :func:`audit` — audit your own GAN loss code against the papers: it names each departure
  by its entry in ``audit.CATALOGUE`` and returns an :class:`AuditReport` of :class:`Finding`
  (docs/audit.md).

    >>> import torch, fastgan.testing as ft
    >>> for name, case in ft.cases("interpolate", torch.float32):
    ...     ft.check_against_reference("reference", case, name)
"""

from __future__ import annotations

from fastgan.testing import audit  # a callable module: audit(family, d_loss, g_loss, ...)
from fastgan.testing.audit import AuditReport, Finding
from fastgan.testing.cases import (
    ADV_CASES,
    ADV_PARAMS,
    ADV_SPECS,
    ARG_NAMES,
    GNP_SPECS,
    KINDS,
    OP_NAMES,
    ROW_SPECS,
    Case,
    Spec,
    cases,
    cotangent,
    generator,
    logits,
    rows_with_norms,
    specs,
)
from fastgan.testing.compare import Comparison, assert_close, compare
from fastgan.testing.layouts import LAYOUTS, arrange, lay, leaf_shape
from fastgan.testing.run import PUBLIC, cancellation_scales, check_against_reference
from fastgan.testing.tolerances import CHUNK, DTYPE_NAMES, DTYPES, TOLERANCES, Tolerance, tolerance

__all__ = [
    "ADV_CASES", "ADV_PARAMS", "ADV_SPECS", "ARG_NAMES", "AuditReport", "CHUNK", "DTYPES", "DTYPE_NAMES", "Finding", "GNP_SPECS",
    "KINDS", "LAYOUTS", "OP_NAMES", "PUBLIC", "ROW_SPECS", "TOLERANCES", "Case", "Comparison", "Spec",
    "Tolerance", "arrange", "assert_close", "audit", "cancellation_scales", "cases", "check_against_reference",
    "compare", "cotangent", "generator", "lay", "leaf_shape", "logits", "rows_with_norms", "specs",
    "tolerance",
]
