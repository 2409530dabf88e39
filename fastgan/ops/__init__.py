"""The four fused operators of fastgan (docs/design.md §2), one module each.

Each module ``fastgan.ops.<op>`` holds the operator's plain-PyTorch ``reference`` (the ground
truth and the fallback), its argument checks (``validate``), the dispatch through
:mod:`fastgan.backends` to the implementation selected for the call (``call``, without checks),
the fake implementations of the compiled kernels and the operator's function, whose public name
is :mod:`fastgan.functional`'s (``fastgan.functional.interpolate`` …). Compiled (``cpu``,
``cuda``) and Triton implementations register themselves with :func:`fastgan.backends.register`
under the same operator name.

Calling ``fastgan.ops.<op>(...)`` — the 0.1 API, when these names were functions — still works,
with a ``DeprecationWarning`` (:mod:`fastgan.ops._module`).
"""

from fastgan.ops import adversarial_loss, grad_norm_penalty, interpolate, reconstruction_error

#: operator name -> its module
OPERATORS = {
    "interpolate": interpolate,
    "grad_norm_penalty": grad_norm_penalty,
    "reconstruction_error": reconstruction_error,
    "adversarial_loss": adversarial_loss,
}

__all__ = ["OPERATORS", "adversarial_loss", "grad_norm_penalty", "interpolate", "reconstruction_error"]
