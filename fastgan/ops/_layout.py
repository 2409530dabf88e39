"""Output layouts of the compiled kernels, mirrored for their fake (meta) implementations.

The kernels (``csrc/cpu/common.h``) read a tensor in memory order when every sample is one
contiguous block (contiguous, channels-last, other dense permutations of the non-batch
dimensions); tensors read together must also share their strides. Otherwise they are made
contiguous. Element-wise outputs take the layout of what was read. The fake implementations
must predict exactly the same shapes, dtypes and strides.
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
    if t.dim() == 0 or t.numel() == 0 or not is_non_overlapping_and_dense(t):
        return False
    return t.shape[0] == 1 or t.stride(0) == t.numel() // t.shape[0]


def _contiguous_empty(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.shape, dtype=t.dtype, device=t.device)


def empty_in_common_layout(*ts: torch.Tensor) -> torch.Tensor:
    """An empty tensor like ``ts[0]`` in the layout the kernels use for ``ts`` read together."""
    first = ts[0]
    same = sample_blocked(first) and all(sample_blocked(u) and u.stride() == first.stride() for u in ts[1:])
    return torch.empty_like(first) if same else _contiguous_empty(first)


def empty_dense_like(t: torch.Tensor) -> torch.Tensor:
    """An empty tensor like ``t`` in the layout of ``t`` when it is dense, else contiguous."""
    return torch.empty_like(t) if is_non_overlapping_and_dense(t) else _contiguous_empty(t)


def not_needed(like: torch.Tensor) -> torch.Tensor:
    """The placeholder the kernels return for a gradient that was not asked for."""
    return like.new_empty((0,))
