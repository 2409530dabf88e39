"""The check of every provider against the reference before it is timed (a provider that
fails it is never timed), and the timed step: one forward + backward on the next input set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from fastgan.bench import timing
from fastgan.bench.catalogue import Case
from fastgan.bench.inputs import Inputs, make_inputs
from fastgan.bench.providers import Provider, reference
from fastgan.testing import TOLERANCES, compare


def _grads(fn: Callable[..., torch.Tensor], inputs: Inputs, seed: int) -> tuple[torch.Tensor, tuple]:
    torch.manual_seed(seed)  # WGAN-GP's alpha: the same draws for every provider
    out = fn(*inputs.tensors)
    grads = torch.autograd.grad(out, inputs.tensors, inputs.grad_out)
    return out.detach(), grads


@dataclass
class CheckResult:
    """Outcome of :func:`check`: ``ok``, the largest error (relative to each tensor's largest
    reference magnitude) and on which tensor it was, or the exception raised."""

    ok: bool
    max_error: float | None = None
    where: str = ""
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return "ok" if self.ok else "wrong"

    def mark(self) -> str:
        if self.error is not None:
            return "✗ error"
        return ("✓" if self.ok else "✗") + (f" {self.max_error:.0e}" if self.max_error is not None else "")


def check(case: Case, provider: Provider, fn: Callable[..., torch.Tensor] | None = None, device: str = "cpu") -> CheckResult:
    """Value and every gradient of ``provider`` on ``case`` against the reference (on fresh
    inputs), by :func:`fastgan.testing.compare` under the rows ``benchmark_op`` (operators) or
    ``benchmark_fam`` (full losses) of :data:`fastgan.testing.TOLERANCES`: every
    ``|a − e| <= tol · max|e|`` (``catalogue.TOL_OP`` / ``TOL_FAMILY``); NaN and infinities must
    sit where the reference has them. ``max_error`` is the largest ``|a − e| / max|e|``."""
    try:
        fn = fn or provider.make(case, device)
        inputs = make_inputs(case, seed=12345, device=device)
        exp_out, exp_grads = _grads(reference(case, device), inputs, seed=777)
        with provider.context():
            out, grads = _grads(fn, inputs, seed=777)
    except Exception as exc:  # a broken provider is reported, never timed
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return CheckResult(False, error=f"{type(exc).__name__}: {msg}")
    row = "benchmark_fam" if case.family else "benchmark_op"
    worst, where, ok = 0.0, "", True
    names = ["output"] + [f"grad[{i}]" for i in range(len(grads))]
    for name, a, e in zip(names, (out, *grads), (exp_out, *exp_grads)):
        if a is None or e is None or a.shape != e.shape:
            return CheckResult(False, float("inf"), f"{name} shape")
        verdict = compare(a.detach(), e.detach(), a.dtype, tolerance=row)
        err = verdict.max_error / max(verdict.scale, 1e-30)
        if not verdict.ok and err <= TOLERANCES[row][a.dtype].atol_scaled:
            err = float("inf")  # NaN or an infinity where the reference has none (or the reverse)
        if (not verdict.ok, err) > (not ok, worst):
            worst, where = err, name
        ok = ok and verdict.ok
    return CheckResult(ok, worst, where)


def make_step(fn: Callable[..., torch.Tensor], sets: list[Inputs]) -> Callable[[], None]:
    """One forward + backward per call, on the next input set of ``sets``."""
    next_set = timing.rotating(sets)
    grad = torch.autograd.grad

    def step() -> None:
        inputs = next_set()
        out = fn(*inputs.tensors)
        grad(out, inputs.tensors, inputs.grad_out)

    return step
