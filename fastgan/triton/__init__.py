"""fastgan's ``triton`` backend: Triton kernels of the four operators (docs/design.md §3).

The ops are ``torch.ops.fastgan_triton.<op>``: declared by the compiled extension ``fastgan._C``
with the same schemas as the C++ kernels' ``torch.ops.fastgan.<op>``, with the same autograd (C++,
``csrc/autograd.cpp``: forward and backward never return to Python) and the same fake
implementations (``fastgan/ops/<op>.py``, so ``torch.compile(fullgraph=True)`` traces through
them). This package only registers the kernels: each ``fastgan/triton/<op>.py`` holds the Triton
kernels of one operator and their host functions, registered for CUDA tensors. One launch per
direction per operator; reductions are deterministic (no float atomics, see
:mod:`fastgan.triton._common`). The backend therefore needs the compiled extension.

The backend runs CUDA (and ROCm) tensors. With ``TRITON_INTERPRET=1`` set before fastgan is
imported, Triton's interpreter runs the same kernels on CPU tensors (about 1000× slower than
torch): that is how the kernels are tested on machines without a GPU.

This package is imported by :mod:`fastgan` only where the backend can run; importing it
registers the kernels and the backend's entries with :mod:`fastgan.backends`.
"""

from __future__ import annotations

import torch

from fastgan import backends
from fastgan.ops.adversarial_loss import reference as adversarial_loss_reference
from fastgan.ops.grad_norm_penalty import reference as grad_norm_penalty_reference
from fastgan.triton import adversarial_loss, grad_norm_penalty, interpolate, reconstruction_error  # noqa: F401
from fastgan.triton._common import INTERPRET, scalars_fit


def _with_scalars(op: str, fn, reference, scalar_args: slice):
    """The backend entry of ``op``: ``fn``, or the reference for the rare scalar arguments
    beyond fp32's range (the kernels take their scalars as fp32 pairs)."""

    def call(*args):
        if scalars_fit(*args[scalar_args]):
            return fn(*args)
        return reference(*args)

    call.__name__ = call.__qualname__ = f"triton_{op}"
    return call


def _register_backend() -> None:
    """The ``triton`` backend's entry of every operator: the ``fastgan_triton`` ops."""
    ops = torch.ops.fastgan_triton
    backends.register("interpolate", "triton", ops.interpolate.default)
    backends.register(
        "grad_norm_penalty", "triton",
        _with_scalars("grad_norm_penalty", ops.grad_norm_penalty.default, grad_norm_penalty_reference, slice(1, 2)),
    )
    backends.register("reconstruction_error", "triton", ops.reconstruction_error.default)
    backends.register(
        "adversarial_loss", "triton",
        _with_scalars("adversarial_loss", ops.adversarial_loss.default, adversarial_loss_reference, slice(3, 6)),
    )


# Without the extension the ops do not exist (nor does the backend); the kernels can still be
# imported and compiled ahead of time (tests/test_triton_build.py).
if backends.extension() is not None:
    _register_backend()

__all__ = ["INTERPRET"]
