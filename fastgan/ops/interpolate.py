"""``interpolate(real, fake, alpha)``: ``fake + alpha_b (real − fake)`` per sample."""

from __future__ import annotations

import torch

from fastgan import _validation as v
from fastgan import backends
from fastgan.ops import _autograd, _layout, _module

OP = "interpolate"


def reference(real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Plain-PyTorch interpolation, computed in fp32 (fp64 for fp64) and stored in the
    inputs' dtype."""
    acc = v.accumulation_dtype(real.dtype)
    a = alpha.to(acc).reshape((-1,) + (1,) * (real.dim() - 1))
    fake_acc = fake.to(acc)
    return (fake_acc + a * (real.to(acc) - fake_acc)).to(real.dtype)


backends.register(OP, "reference", reference)


def fake(real, fake, alpha):
    """Output of the fused kernels (CPU, CUDA, Triton) on fake tensors: the layout they write."""
    return _layout.empty_in_common_layout(real, fake)


def fake_backward(grad, real, fake, alpha, need_real, need_fake, need_alpha):
    """Gradients of the compiled backward on fake tensors (placeholders for those not needed)."""
    like = _layout.empty_in_common_layout(grad, real, fake) if need_alpha else _layout.empty_in_common_layout(grad)
    placeholder = _layout.not_needed(like)
    return (
        torch.empty_like(like) if need_real else placeholder,
        torch.empty_like(like) if need_fake else placeholder.clone(),
        alpha.new_empty(alpha.shape) if need_alpha else placeholder.clone(),
    )


def backward_composite(grad, real, fake, alpha, need_real, need_fake, need_alpha):
    """The backward as differentiable composite math (under ``create_graph``), in the
    compiled backward's signature: placeholders for the gradients not needed."""
    grads = _autograd.vjp(reference, grad, (real, fake, alpha), (need_real, need_fake, need_alpha))
    return tuple(_layout.not_needed(grad) if d is None else d for d in grads)


def _register_compiled() -> None:
    """Fake implementations of the fused ops (the C++ kernels' and the Triton kernels', which share
    their schemas and autograd), the composite backward, and the compiled backends of this operator."""
    for ns in backends.OP_NAMESPACES:
        torch.library.register_fake(f"{ns}::interpolate")(fake)
        torch.library.register_fake(f"{ns}::interpolate_backward")(fake_backward)
    _autograd.register(OP, backward_composite)
    backends.register_compiled(OP, torch.ops.fastgan.interpolate.default)


backends.on_extension_loaded(_register_compiled)


def validate(real: object, fake: object, alpha: object, names=("real", "fake", "alpha")) -> None:
    v.check_batched(names[0], real)
    v.check_like(names[:2], real, fake)  # type: ignore[arg-type]
    v.check_float_tensor(names[2], alpha)
    assert isinstance(real, torch.Tensor) and isinstance(alpha, torch.Tensor)
    if alpha.shape != real.shape[:1]:
        raise ValueError(
            f"{names[2]} must have shape (B,) = ({real.shape[0]},), one coefficient per sample, "
            f"got shape {tuple(alpha.shape)}"
        )
    v.check_same_device([names[0], names[2]], [real, alpha])
    v.check_same_dtype([names[0], names[2]], [real, alpha])


def call(real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The operator on the backend selected for the inputs' device, without argument checks
    (the callers have made them: :func:`validate`)."""
    real, fake, alpha = v.promote(real, fake, alpha)  # mixed only under autocast
    _, fn = backends.resolve(OP, real.device)
    return fn(real, fake, alpha)


def interpolate(real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Per-sample interpolation ``x̂_b = fake_b + alpha_b (real_b − fake_b)``. ``real`` and
    ``fake`` have the same shape (B, …), dtype and device; ``alpha`` has shape (B,), ``real``'s
    dtype (any floating dtype under autocast) and device. Returns a new tensor shaped like
    ``real``, differentiable w.r.t. all three inputs. Public as
    :func:`fastgan.functional.interpolate`."""
    validate(real, fake, alpha)
    return call(real, fake, alpha)


_module.make_callable(__name__, interpolate)
