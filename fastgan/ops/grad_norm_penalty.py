"""``grad_norm_penalty(grads, center, one_sided)``: ``mean_b φ(‖g_b‖₂ − center)``."""

from __future__ import annotations

import torch

from fastgan import _validation as v
from fastgan import backends
from fastgan.ops import _autograd, _layout, _module

OP = "grad_norm_penalty"


#: The dtype of the penalty's per-sample sums of squares, norms and backward scale, for every
#: input dtype and backend (why: docs/design.md §6; the compiled kernels' ``kNormsDtype``).
NORM_DTYPE = torch.float64


def reference(grads: torch.Tensor, center: float, one_sided: bool) -> torch.Tensor:
    """Per-sample L2 norm over every non-batch dimension, accumulated in fp64 (:data:`NORM_DTYPE`);
    φ(t) = t² (``max(t, 0)²`` when one-sided). The gradient is 0 for a sample whose norm is 0."""
    acc = NORM_DTYPE
    norms = torch.linalg.vector_norm(grads.reshape(grads.shape[0], -1).to(acc), dim=1)
    t = norms - center
    if one_sided:
        t = t.clamp_min(0.0)
    return t.square().mean().to(grads.dtype)


backends.register(OP, "reference", reference)


def fake(grads, center, one_sided):
    """The loss of the fused kernels (CPU, CUDA, Triton) on fake tensors."""
    return grads.new_empty(())


def fake_forward(grads, center, one_sided):
    """(loss, per-sample norms in :data:`NORM_DTYPE`) on fake tensors."""
    return grads.new_empty(()), grads.new_empty((grads.shape[0],), dtype=NORM_DTYPE)


def fake_backward(grad_out, grads, norms, center, one_sided):
    """The compiled backward's gradient on fake tensors, in the layout the kernels write."""
    return _layout.empty_in_common_layout(grads)


def backward_composite(grad_out, grads, norms, center, one_sided):
    """The backward as differentiable composite math (under ``create_graph``), in the
    compiled backward's signature (the saved norms are recomputed)."""
    return _autograd.vjp(reference, grad_out, (grads, center, one_sided), (True,))[0]


def _register_compiled() -> None:
    """Fake implementations of the fused ops (the C++ kernels' and the Triton kernels', which share
    their schemas and autograd), the composite backward, and the compiled backends of this operator."""
    for ns in backends.OP_NAMESPACES:
        torch.library.register_fake(f"{ns}::grad_norm_penalty")(fake)
        torch.library.register_fake(f"{ns}::grad_norm_penalty_forward")(fake_forward)
        torch.library.register_fake(f"{ns}::grad_norm_penalty_backward")(fake_backward)
    _autograd.register(OP, backward_composite)
    backends.register_compiled(OP, torch.ops.fastgan.grad_norm_penalty.default)


backends.on_extension_loaded(_register_compiled)


def validate(grads: object, center: object, one_sided: object, names=("grads", "center", "one_sided")):
    v.check_batched(names[0], grads)
    c = v.check_nonneg(names[1], center)
    return c, v.check_bool(names[2], one_sided)


def call(grads: torch.Tensor, center: float, one_sided: bool) -> torch.Tensor:
    """The operator on the backend selected for ``grads``' device, without argument checks
    (the callers have made them: :func:`validate`)."""
    _, fn = backends.resolve(OP, grads.device)
    return fn(grads, center, one_sided)


def grad_norm_penalty(grads: torch.Tensor, center: float = 1.0, one_sided: bool = False) -> torch.Tensor:
    """``mean_b φ(‖g_b‖₂ − center)`` with the norm per sample over all non-batch dimensions;
    φ(t) = t², or ``max(t, 0)²`` when ``one_sided``; ``center`` is a finite number >= 0. A sample
    whose norm is 0 gets a finite (0) gradient. Returns a 0-dim tensor in ``grads``' dtype.
    Public as :func:`fastgan.functional.grad_norm_penalty`."""
    center, one_sided = validate(grads, center, one_sided)
    return call(grads, center, one_sided)


_module.make_callable(__name__, grad_norm_penalty)
