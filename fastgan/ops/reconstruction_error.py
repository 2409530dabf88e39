"""``reconstruction_error(x, recon, p)``: per-sample ``mean_i |x − recon|^p``, p ∈ {1, 2}."""

from __future__ import annotations

import numbers

import torch

from fastgan import _deprecation as deprecation
from fastgan import _validation as v
from fastgan import backends
from fastgan.ops import _autograd, _layout, _module

OP = "reconstruction_error"


def reference(x: torch.Tensor, recon: torch.Tensor, p: int) -> torch.Tensor:
    """Per-sample mean of ``|x − recon|^p`` over every non-batch element, accumulated in fp32
    (fp64 for fp64), returned with shape (B,) in the inputs' dtype."""
    acc = v.accumulation_dtype(x.dtype)
    diff = (x.to(acc) - recon.to(acc)).reshape(x.shape[0], -1)
    err = diff.abs() if p == 1 else diff.square()
    return err.mean(dim=1).to(x.dtype)


backends.register(OP, "reference", reference)


def fake(x, recon, p):
    """Output of the fused kernels (CPU, CUDA, Triton) on fake tensors."""
    return x.new_empty((x.shape[0],))


def fake_backward(grad_out, x, recon, p, need_x, need_recon):
    """Gradients of the compiled backward on fake tensors (placeholders for those not needed)."""
    like = _layout.empty_in_common_layout(x, recon)
    placeholder = _layout.not_needed(like)
    return (
        torch.empty_like(like) if need_x else placeholder,
        torch.empty_like(like) if need_recon else placeholder.clone(),
    )


def backward_composite(grad_out, x, recon, p, need_x, need_recon):
    """The backward as differentiable composite math (under ``create_graph``), in the
    compiled backward's signature: placeholders for the gradients not needed."""
    grads = _autograd.vjp(reference, grad_out, (x, recon, p), (need_x, need_recon))
    return tuple(_layout.not_needed(x) if d is None else d for d in grads)


def _register_compiled() -> None:
    """Fake implementations of the fused ops (the C++ kernels' and the Triton kernels', which share
    their schemas and autograd), the composite backward, and the compiled backends of this operator."""
    for ns in backends.OP_NAMESPACES:
        torch.library.register_fake(f"{ns}::reconstruction_error")(fake)
        torch.library.register_fake(f"{ns}::reconstruction_error_backward")(fake_backward)
    _autograd.register(OP, backward_composite)
    backends.register_compiled(OP, torch.ops.fastgan.reconstruction_error.default)


backends.on_extension_loaded(_register_compiled)


def validate(x: object, recon: object, p: object, names=("x", "recon", "p")) -> int:
    v.check_batched(names[0], x)
    v.check_like(names[:2], x, recon)  # type: ignore[arg-type]
    if isinstance(p, numbers.Real) and not isinstance(p, (bool, int, float)):
        try:  # a NumPy integer or floating scalar: as the Python number it equals
            p = int(p) if float(p) in (1.0, 2.0) else p
        except (OverflowError, ValueError):
            pass
    if isinstance(p, bool) or not isinstance(p, (int, float)) or p not in (1, 2):
        raise ValueError(f"{names[2]} must be 1 or 2, got {p!r}")
    return int(p)


def call(x: torch.Tensor, recon: torch.Tensor, p: int) -> torch.Tensor:
    """The operator on the backend selected for ``x``'s device, without argument checks (the
    callers have made them: :func:`validate`)."""
    x, recon = v.promote(x, recon)  # mixed only under autocast
    _, fn = backends.resolve(OP, x.device)
    return fn(x, recon, p)


def reconstruction_error(inputs: torch.Tensor, reconstructions: torch.Tensor, p: int | None = None) -> torch.Tensor:
    """Per-sample ``mean_i |x − AE(x)|^p`` of shape (B,): p = 2 is EBGAN's energy (per-sample
    MSE), p = 1 is BEGAN's L (η = 1). ``p`` is 1 or 2 (an int or an integral float, Python's or
    NumPy's; not a bool). Public as :func:`fastgan.functional.reconstruction_error`.

    Pass ``p``: no default suits both families. Omitting it still gives p = 1 (fastgan 0.x's
    default) with a ``DeprecationWarning`` (none while ``torch.compile`` traces)."""
    if p is None:
        deprecation.warn(
            "fastgan.functional.reconstruction_error without p is deprecated (it uses p=1); pass "
            "p=1 for BEGAN's L1 error or p=2 for EBGAN's energy (the per-sample MSE)"
        )
        p = 1
    p = validate(inputs, reconstructions, p, names=("inputs", "reconstructions", "p"))
    return call(inputs, reconstructions, p)


# fastgan 0.1's fastgan.ops.reconstruction_error took x= and recon=
_module.make_callable(__name__, reconstruction_error, {"x": "inputs", "recon": "reconstructions"})
