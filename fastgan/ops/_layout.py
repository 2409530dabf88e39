"""The layout rule of the fused kernels, in Python: for the Triton host code (which applies it) and
for the fake (meta) implementations of every backend (which predict it).

The kernels (``csrc/common/prepare.h`` for the C++ ones) read a tensor in memory order when every
sample is one contiguous block (contiguous, channels-last, other dense permutations of the
non-batch dimensions); tensors read together must also share their strides. Otherwise they are
made contiguous. Element-wise outputs take the layout of what was read. The fake implementations
must predict exactly the same shapes, dtypes and strides (docs/design.md §4).
"""

from __future__ import annotations

import torch


def is_non_overlapping_and_dense(t: torch.Tensor) -> bool:
    """The C++ ``Tensor::is_non_overlapping_and_dense()``, for real and fake tensors alike."""
    sizes, strides = t.shape, t.stride()
    if t.dim() == 1:
        return sizes[0] < 2 or strides[0] == 1
    dims = [d for d in range(t.dim()) if sizes[d] >= 2]
    dims.sort(key=lambda d: strides[d])
    expected = 1
    for d in dims:
        if strides[d] != expected:
            return False
        expected *= sizes[d]
    return True


def sample_blocked(t: torch.Tensor) -> bool:
    """Whether every sample of ``t`` is one dense block of memory (read in memory order)."""
    if t.dim() == 0 or t.numel() == 0 or not is_non_overlapping_and_dense(t):
        return False
    return t.shape[0] == 1 or t.stride(0) == t.numel() // t.shape[0]


def _contiguous_empty(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, device=t.device)


def read_as_is(*ts: torch.Tensor) -> bool:
    """Whether the kernels read ``ts`` (read together) as they are: each sample-blocked, all with
    the same strides. Otherwise they read contiguous copies."""
    first = ts[0]
    return sample_blocked(first) and all(sample_blocked(u) and u.stride() == first.stride() for u in ts[1:])


def in_common_layout(*ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``ts`` as the kernels read them together: as they are (:func:`read_as_is`), otherwise
    contiguous copies."""
    return ts if read_as_is(*ts) else tuple(u.contiguous() for u in ts)


def empty_in_common_layout(*ts: torch.Tensor) -> torch.Tensor:
    """An empty tensor like ``ts[0]`` in the layout the kernels use for ``ts`` read together."""
    return torch.empty_like(ts[0]) if read_as_is(*ts) else _contiguous_empty(ts[0])


def dense(t: torch.Tensor) -> torch.Tensor:
    """``t`` when it is non-overlapping and dense (any order), else a contiguous copy: how the
    kernels read a tensor read in memory order as one flat block (the adversarial scores)."""
    return t if is_non_overlapping_and_dense(t) else t.contiguous()


def empty_dense_like(t: torch.Tensor) -> torch.Tensor:
    """An empty tensor like ``t`` in the layout of ``t`` when it is dense, else contiguous."""
    return torch.empty_like(t) if is_non_overlapping_and_dense(t) else _contiguous_empty(t)


def not_needed(like: torch.Tensor) -> torch.Tensor:
    """The placeholder the kernels return for a gradient that was not asked for."""
    return like.new_empty((0,))
