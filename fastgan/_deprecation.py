"""fastgan's one way of saying that a form is deprecated: :func:`warn`. Internal."""

from __future__ import annotations

import warnings

import torch


def warn(message: str, stacklevel: int = 2) -> None:
    """A ``DeprecationWarning`` with ``message``, attributed ``stacklevel`` frames above the
    caller of this function (``stacklevel=2``: the caller's caller, as ``warnings.warn``'s
    default from the deprecated function). Nothing while ``torch.compile`` traces: it cannot
    trace ``warnings.warn``, and a compiled call is the same call as the eager one that warned."""
    if not torch.compiler.is_compiling():
        warnings.warn(message, DeprecationWarning, stacklevel=stacklevel + 1)
