"""``adversarial_loss(real, fake, kind, …)``: ``mean(t_real(real)) + mean(t_fake(fake))``.

The element-wise terms of every kind live here once (:func:`real_term`, :func:`fake_term`); the
generator losses reuse them on the fake scores (see :mod:`fastgan.functional`).

===========  ==========================  ===============================
kind         t_real(x)                   t_fake(x)
===========  ==========================  ===============================
``bce``      softplus(−x)                softplus(x)
``wgan``     −x                          x
``lsgan``    ½ (x − real_target)²        ½ (x − fake_target)²
``hinge``    relu(margin − x)            relu(margin + x)
``margin``   x                           relu(margin − x)   (EBGAN)
===========  ==========================  ===============================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fastgan import _validation as v
from fastgan import backends
from fastgan.ops import _autograd, _layout, _module

OP = "adversarial_loss"
KINDS = ("bce", "wgan", "lsgan", "hinge", "margin")


def real_term(kind: str, x: torch.Tensor, real_target: float, margin: float) -> torch.Tensor:
    if kind == "bce":
        return F.softplus(-x)
    if kind == "wgan":
        return -x
    if kind == "lsgan":
        return 0.5 * (x - real_target).square()
    if kind == "hinge":
        return F.relu(margin - x)
    return x  # margin (EBGAN): the energy itself


def fake_term(kind: str, x: torch.Tensor, fake_target: float, margin: float) -> torch.Tensor:
    if kind == "bce":
        return F.softplus(x)
    if kind == "wgan":
        return x
    if kind == "lsgan":
        return 0.5 * (x - fake_target).square()
    if kind == "hinge":
        return F.relu(margin + x)
    return F.relu(margin - x)  # margin (EBGAN)


def reference(
    real: torch.Tensor | None,
    fake: torch.Tensor | None,
    kind: str,
    real_target: float,
    fake_target: float,
    margin: float,
) -> torch.Tensor:
    """Sum of the means of the present terms, computed in fp32 (fp64 for fp64)."""
    out_dtype = (real if real is not None else fake).dtype  # type: ignore[union-attr]
    acc = v.accumulation_dtype(out_dtype)
    total = None
    if real is not None:
        total = real_term(kind, real.to(acc), real_target, margin).mean()
    if fake is not None:
        f = fake_term(kind, fake.to(acc), fake_target, margin).mean()
        total = f if total is None else total + f
    return total.to(out_dtype)  # type: ignore[union-attr]


backends.register(OP, "reference", reference)


def fake(real, fake, kind, real_target, fake_target, margin):
    """Output of the fused kernels (CPU, CUDA, Triton) on fake tensors."""
    return (real if real is not None else fake).new_empty(())


def fake_backward(grad_out, real, fake, kind, real_target, fake_target, margin, need_real, need_fake):
    """Gradients of the compiled backward on fake tensors (placeholders for those not needed)."""
    placeholder = _layout.not_needed(real if real is not None else fake)
    return (
        _layout.empty_dense_like(real) if need_real else placeholder,
        _layout.empty_dense_like(fake) if need_fake else placeholder.clone(),
    )


def backward_composite(grad_out, real, fake, kind, real_target, fake_target, margin, need_real, need_fake):
    """The backward as differentiable composite math (under ``create_graph``), in the
    compiled backward's signature: placeholders for the gradients not needed. Each side's
    gradient reads that side only, so an absent side is left out of the reference."""
    grads = _autograd.vjp(
        reference, grad_out, (real, fake, kind, real_target, fake_target, margin), (need_real, need_fake)
    )
    like = real if real is not None else fake
    return tuple(_layout.not_needed(like) if d is None else d for d in grads)


def _register_compiled() -> None:
    """Fake implementations of the fused ops (the C++ kernels' and the Triton kernels', which share
    their schemas and autograd), the composite backward, and the compiled backends of this operator."""
    for ns in backends.OP_NAMESPACES:
        torch.library.register_fake(f"{ns}::adversarial_loss")(fake)
        torch.library.register_fake(f"{ns}::adversarial_loss_backward")(fake_backward)
    _autograd.register(OP, backward_composite)
    backends.register_compiled(OP, torch.ops.fastgan.adversarial_loss.default)


backends.on_extension_loaded(_register_compiled)


def validate(real, fake, kind, real_target, fake_target, margin, names=("real", "fake")):
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if real is None and fake is None:
        raise ValueError(f"{names[0]} and {names[1]} cannot both be None")
    v.check_scores(names, real, fake)
    return (
        v.check_real("real_target", real_target),
        v.check_real("fake_target", fake_target),
        v.check_nonneg("margin", margin),
    )


def call(real, fake, kind, real_target=1.0, fake_target=0.0, margin=1.0) -> torch.Tensor:
    """The operator on the backend selected for the inputs' device, without argument checks
    (the callers have made them: :func:`validate`)."""
    real, fake = v.promote(real, fake)  # mixed only under autocast
    _, fn = backends.resolve(OP, (real if real is not None else fake).device)
    return fn(real, fake, kind, real_target, fake_target, margin)


def adversarial_loss(
    real: torch.Tensor | None,
    fake: torch.Tensor | None,
    kind: str,
    *,
    real_target: float = 1.0,
    fake_target: float = 0.0,
    margin: float = 1.0,
) -> torch.Tensor:
    """``mean(t_real(real)) + mean(t_fake(fake))`` in one call, for ``kind`` in
    ``bce``, ``wgan``, ``lsgan``, ``hinge``, ``margin`` (table in the module docstring).

    Either input may be ``None`` (its term is left out). Scores may have any batch-first shape;
    each mean runs over all of its elements. Returns a 0-dim tensor in the inputs' dtype.
    Public as :func:`fastgan.functional.adversarial_loss`.
    """
    params = validate(real, fake, kind, real_target, fake_target, margin)
    return call(real, fake, kind, *params)


_module.make_callable(__name__, adversarial_loss)
