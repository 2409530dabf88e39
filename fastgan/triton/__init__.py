"""fastgan's ``triton`` backend: Triton kernels of the four operators (docs/design.md §3).

Each operator is a ``torch.library.custom_op`` in the ``fastgan_triton`` namespace with a fake
implementation (so ``torch.compile(fullgraph=True)`` traces through it) and an autograd formula
whose backward is another custom op. One launch per direction per operator; reductions are
deterministic (no float atomics, see :mod:`fastgan.triton._common`).

The backend runs CUDA (and ROCm) tensors. With ``TRITON_INTERPRET=1`` set before fastgan is
imported, Triton's interpreter runs the same kernels on CPU tensors (about 1000× slower than
torch): that is how the kernels are tested on machines without a GPU.

This package is imported by :mod:`fastgan` only where the backend can run; importing it
registers the operators with :mod:`fastgan.backends`.
"""

from __future__ import annotations

from fastgan import backends
from fastgan.triton import adversarial_loss, grad_norm_penalty, interpolate, reconstruction_error
from fastgan.triton._common import INTERPRET, scalars_fit


def _with_scalars(op: str, fn, scalar_args: slice):
    """The backend entry of ``op``: ``fn``, or the reference for the rare scalar arguments
    beyond fp32's range (the kernels take their scalars as fp32 pairs)."""
    reference = backends._IMPLS["reference"][op]

    def call(*args):
        if scalars_fit(*args[scalar_args]):
            return fn(*args)
        return reference(*args)

    call.__name__ = call.__qualname__ = f"triton_{op}"
    return call


backends.register("interpolate", "triton", interpolate.interpolate)
backends.register(
    "grad_norm_penalty", "triton", _with_scalars("grad_norm_penalty", grad_norm_penalty.grad_norm_penalty, slice(1, 2))
)
backends.register("reconstruction_error", "triton", reconstruction_error.reconstruction_error)
backends.register(
    "adversarial_loss", "triton", _with_scalars("adversarial_loss", adversarial_loss.adversarial_loss, slice(3, 6))
)

__all__ = ["INTERPRET"]
