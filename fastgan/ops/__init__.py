"""The four fused operators of fastgan (docs/design.md §2).

Each module ``fastgan/ops/<op>.py`` holds the operator's plain-PyTorch reference (the ground truth
and the fallback), its input validation, and the dispatch through :mod:`fastgan.backends` to the
implementation selected for the call. Compiled (``cpu``, ``cuda``) and Triton implementations
register themselves with :func:`fastgan.backends.register` under the same operator name.
"""

from fastgan.ops.adversarial_loss import adversarial_loss
from fastgan.ops.grad_norm_penalty import grad_norm_penalty
from fastgan.ops.interpolate import interpolate
from fastgan.ops.reconstruction_error import reconstruction_error

__all__ = ["adversarial_loss", "grad_norm_penalty", "interpolate", "reconstruction_error"]
