"""The memory layouts every operator is checked in.

Two forms of one layout: :func:`arrange` places values in a layout as a new tensor (the test
cases: a stride-ignoring kernel reads NaN from the gaps of ``strided``), and :func:`lay` makes a
*differentiable* view or copy of a leaf (``fastgan check``: the backend sees the layout and the
gradient flows back to the leaf, whose shape :func:`leaf_shape` gives).
"""

from __future__ import annotations

import torch

#: ``name -> what it is``. ``permuted`` and ``batch_inner`` are one layout (every dimension
#: reversed in memory); ``strided`` and ``sliced`` one (step 2 in the first and last dimensions).
LAYOUTS: dict[str, str] = {
    "contig": "contiguous",
    "channels_last": "torch.channels_last (4-D tensors; others stay contiguous)",
    "permuted": "every dimension reversed in memory: the batch is the innermost dimension",
    "strided": "a view with step 2 in the first and last dimensions (NaN in the gaps)",
    "expanded": "a stride-0 broadcast of one sample over the batch (read-only inputs)",
}
#: The names ``fastgan check`` uses for the same layouts.
ALIASES = {"batch_inner": "permuted", "sliced": "strided"}


def _strided_index(dim: int) -> tuple[slice, ...]:
    return (slice(None, None, 2),) + (slice(None),) * (dim - 2) + ((slice(None, None, 2),) if dim > 1 else ())


def leaf_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The shape of the leaf that :func:`lay` turns into a tensor of ``shape`` in ``layout``
    (twice the batch and last size for ``strided``)."""
    if ALIASES.get(layout, layout) != "strided":
        return tuple(shape)
    s = list(shape)
    s[0] *= 2
    if len(s) > 1:
        s[-1] *= 2
    return tuple(s)


def lay(t: torch.Tensor, layout: str) -> torch.Tensor:
    """``t`` in ``layout`` as a differentiable view or copy (for ``strided``, ``t`` has the
    :func:`leaf_shape`; for ``expanded``, its first sample broadcast over the batch)."""
    layout = ALIASES.get(layout, layout)
    if layout == "contig":
        return t
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
    if layout == "permuted":
        rev = tuple(reversed(range(t.dim())))
        return t.permute(rev).contiguous().permute(rev)
    if layout == "strided":
        return t[_strided_index(t.dim())]
    if layout == "expanded":
        return t[:1].expand(t.shape)
    raise ValueError(f"layout: unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")


def arrange(t: torch.Tensor, layout: str) -> torch.Tensor:
    """The values of contiguous ``t`` in ``layout``, as a new tensor (never sharing ``t``'s
    memory). ``strided`` is a view into a NaN-filled buffer, so that a kernel that ignores
    strides reads NaN; ``channels_last`` needs a 4-D tensor; ``expanded`` needs a batch whose
    samples are all equal to the first."""
    layout = ALIASES.get(layout, layout)
    if layout == "contig":
        return t.clone()
    if layout == "strided":
        big = torch.full(leaf_shape(tuple(t.shape), layout), float("nan"), dtype=t.dtype, device=t.device)
        view = big[_strided_index(t.dim())]
        view.copy_(t)
        return view
    if layout == "channels_last" and t.dim() != 4:
        raise ValueError("layout: channels_last needs a 4-D tensor")
    if layout == "expanded" and not bool((t == t[:1]).all()):
        raise ValueError("layout: expanded needs every sample equal to the first")
    out = lay(t, layout)
    if layout == "expanded":
        out = t[:1].clone().expand(t.shape)
    if out.untyped_storage().data_ptr() == t.untyped_storage().data_ptr():
        out = out.clone()
    return out
