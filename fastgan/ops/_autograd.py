"""Higher-order gradients of the fused operators, written once for every operator and backend.

The fused kernels run the forward and the first-order backward. A backward that runs under
``create_graph`` (a double backward: unrolled GANs, consensus optimisation, a penalty on a loss's
gradient) must itself be differentiable; there the operators compute their backward as the
vector-Jacobian product of their plain-PyTorch reference — composite math that PyTorch
differentiates to any order, so every order matches the reference exactly.

Every non-reference backend's autograd (C++, ``csrc/autograd.cpp``, for the ``fastgan`` and the
``fastgan_triton`` ops alike) calls ``torch.ops.fastgan._<op>_backward_composite`` there, whose
implementation :func:`register` installs here (``CompositeImplicitAutograd``: it runs above
autograd, so its result carries a graph).

Under ``torch.func`` transforms and forward-mode AD the operators run the reference outright
(:func:`fastgan.backends.resolve`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

_LIB: list[torch.library.Library] = []  # the fragment holding the composite implementations


def vjp(
    reference: Callable[..., torch.Tensor],
    grad: torch.Tensor,
    args: Sequence[object],
    needs: Sequence[bool],
) -> list[torch.Tensor | None]:
    """``grad``'s vector-Jacobian product with ``reference(*args)`` for the leading tensor
    arguments flagged in ``needs`` (``None`` for the others), as a differentiable graph.

    A needed argument that does not require grad is a stand-in for an input the forward did not
    save because its gradient does not read it: it gets a fresh leaf of its own."""
    args = list(args)
    wrt = []
    for i, need in enumerate(needs):
        if need:
            if not args[i].requires_grad:  # type: ignore[union-attr]
                args[i] = args[i].detach().requires_grad_(True)  # type: ignore[union-attr]
            wrt.append(i)
    out: list[torch.Tensor | None] = [None] * len(needs)
    if not wrt:
        return out
    with torch.enable_grad():
        value = reference(*args)
        grads = torch.autograd.grad(value, [args[i] for i in wrt], grad, create_graph=True, allow_unused=True)
    for i, g in zip(wrt, grads):
        out[i] = torch.zeros_like(args[i]) if g is None else g  # type: ignore[arg-type]
    return out


def register(op: str, fn: Callable[..., object]) -> None:
    """Install ``fn`` as ``torch.ops.fastgan._<op>_backward_composite`` (once the extension that
    declares the schema is loaded)."""
    if not _LIB:
        _LIB.append(torch.library.Library("fastgan", "IMPL"))
    _LIB[0].impl(f"_{op}_backward_composite", fn, "CompositeImplicitAutograd")
