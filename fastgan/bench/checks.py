"""The check of every provider against the reference before it is timed (a provider that
fails it is never timed), and the timed step: one forward + backward on the next input set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from fastgan.bench import timing
from fastgan.bench.catalogue import TOL_FAMILY, TOL_OP, Case
from fastgan.bench.inputs import Inputs, make_inputs
from fastgan.bench.providers import Provider, reference


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
    inputs): the largest ``|a − e| / max|e|`` over the tensors must stay within
    :data:`TOL_OP` (operators) or :data:`TOL_FAMILY` (full losses; NaN fails)."""
    try:
        fn = fn or provider.make(case, device)
        inputs = make_inputs(case, seed=12345, device=device)
        exp_out, exp_grads = _grads(reference(case, device), inputs, seed=777)
        with provider.context():
            out, grads = _grads(fn, inputs, seed=777)
    except Exception as exc:  # a broken provider is reported, never timed
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return CheckResult(False, error=f"{type(exc).__name__}: {msg}")
    tol = TOL_FAMILY if case.family else TOL_OP
    worst, where = 0.0, ""
    names = ["output"] + [f"grad[{i}]" for i in range(len(grads))]
    for name, a, e in zip(names, (out, *grads), (exp_out, *exp_grads)):
        if a is None or e is None or a.shape != e.shape:
            return CheckResult(False, float("inf"), f"{name} shape")
        a64, e64 = a.detach().double(), e.detach().double()
        scale = max(float(e64.abs().max()) if e64.numel() else 0.0, 1e-30)
        diff = (a64 - e64).abs()
        nan_mismatch = bool((a64.isnan() != e64.isnan()).any())
        err = float("inf") if nan_mismatch else float(diff.nan_to_num(0.0).max() if diff.numel() else 0.0) / scale
        if err > worst or err != err:
            worst, where = err, name
    return CheckResult(worst <= tol, worst, where)


def make_step(fn: Callable[..., torch.Tensor], sets: list[Inputs]) -> Callable[[], None]:
    """One forward + backward per call, on the next input set of ``sets``."""
    next_set = timing.rotating(sets)
    grad = torch.autograd.grad

    def step() -> None:
        inputs = next_set()
        out = fn(*inputs.tensors)
        grad(out, inputs.tensors, inputs.grad_out)

    return step
