"""Running a case of :mod:`fastgan.testing.cases`: a backend's forward and every gradient
against the float64 reference, with the one :func:`~fastgan.testing.assert_close`."""

from __future__ import annotations

from collections.abc import Callable

import torch

import fastgan
from fastgan.testing.cases import Case, op_module
from fastgan.testing.compare import assert_close


def _adversarial_public(real, fake, kind, real_target, fake_target, margin):
    return fastgan.functional.adversarial_loss(real, fake, kind, real_target=real_target, fake_target=fake_target, margin=margin)


#: ``op -> callable`` taking the reference's positional arguments and calling the public operator
#: (which dispatches to the selected backend).
PUBLIC: dict[str, Callable[..., torch.Tensor]] = {
    "interpolate": lambda real, fake, alpha: fastgan.functional.interpolate(real, fake, alpha),
    "grad_norm_penalty": lambda g, center, one_sided: fastgan.functional.grad_norm_penalty(g, center, one_sided),
    "reconstruction_error": lambda x, recon, p: fastgan.functional.reconstruction_error(x, recon, p),
    "adversarial_loss": _adversarial_public,
}


# ------------------------------------------------------------------------ running a case
def with_grad(case: Case) -> tuple[list, list[torch.Tensor], list, list[torch.Tensor]]:
    """Fresh copies of the case's arguments whose tensors require grad: (args, their tensors,
    ref_args, their tensors)."""
    args = list(case.args)
    ref_args = list(case.ref_args)
    leaves, ref_leaves = [], []
    for i in case.tensor_positions:
        args[i] = args[i].detach().requires_grad_(True)
        ref_args[i] = ref_args[i].detach().clone().requires_grad_(True)
        leaves.append(args[i])
        ref_leaves.append(ref_args[i])
    return args, leaves, ref_args, ref_leaves


def run_backend(backend: str, case: Case, args: list, leaves: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Forward and the gradient w.r.t. every tensor argument on ``backend``."""
    with fastgan.use_backend(backend):
        out = PUBLIC[case.op](*args)
        grads = torch.autograd.grad(out, leaves, case.cot)
    return out, grads


def run_reference64(case: Case, ref_args: list, ref_leaves: list[torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """The module's reference on the float64 copies: forward and gradients (the ground truth)."""
    out = op_module(case.op).reference(*ref_args)
    grads = torch.autograd.grad(out, ref_leaves, case.cot64)
    return out.detach(), grads


def cancellation_scales(case: Case) -> dict[str, float]:
    """For the results that sum terms of both signs, the magnitude of those terms (the scale of
    their accumulation error): ``{"forward" or tensor name: scale}``."""
    a = case.ref_args
    if case.op == "adversarial_loss":
        mod = op_module("adversarial_loss")
        kind, real_target, fake_target, margin = a[2:]
        total = 0.0
        if a[0] is not None:
            total += mod.real_term(kind, a[0], real_target, margin).abs().mean().item()
        if a[1] is not None:
            total += mod.fake_term(kind, a[1], fake_target, margin).abs().mean().item()
        return {"forward": total}
    if case.op == "interpolate":  # d/dalpha_b = sum_i cot_i (real_i - fake_i)
        terms = (case.cot64 * (a[0] - a[1])).abs().reshape(a[0].shape[0], -1).sum(1)
        return {"alpha": terms.max().item()}
    return {}


def check_against_reference(backend: str, case: Case, label: str = "") -> None:
    """``backend``'s forward and gradient w.r.t. every tensor argument of ``case`` against the
    float64 reference, under the ``operator`` tolerances (AssertionError naming what differs)."""
    args, leaves, ref_args, ref_leaves = with_grad(case)
    out, grads = run_backend(backend, case, args, leaves)
    expected, expected_grads = run_reference64(case, ref_args, ref_leaves)
    where = f"{backend} {case.op}{(' ' + label) if label else ''}"
    scales = cancellation_scales(case)
    if out.device != leaves[0].device:
        raise AssertionError(f"{where}: output on {out.device}, inputs on {leaves[0].device}")
    assert_close(out, expected, case.dtype, f"{where} forward", scale=scales.get("forward", 0.0))
    for name, got, exp in zip(case.tensor_names(), grads, expected_grads):
        assert_close(got, exp, case.dtype, f"{where} d/d{name}", scale=scales.get(name, 0.0))
