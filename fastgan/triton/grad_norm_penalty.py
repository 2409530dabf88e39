"""``grad_norm_penalty`` in Triton: mean_b φ(‖g_b‖₂ − center), one launch per direction.

Sums of squares, norms and the backward's per-sample scale are in fp64 for every input dtype
(see :data:`fastgan.ops.grad_norm_penalty.NORM_DTYPE`). Forward: every program sums the squares
of its chunk of a row; the last program adds each row's
partials in chunk order (deterministic), takes the norms, and writes them and the loss. Backward:
dg = g · gout φ'(n_b − center) / (B n_b) with the saved norms, element-wise (0 for a zero norm);
the incoming gradient is read on the device, never on the host."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastgan.ops import _layout
from fastgan.ops.grad_norm_penalty import NORM_DTYPE
from fastgan.triton import _common as cm
from fastgan.triton import _terms


@triton.jit
def _gnp_fwd(g, part, cnt, loss, norms, B, M, stride, C, TILES, center_hi, center_lo,
             ONE_SIDED: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr, FR: tl.constexpr, FC: tl.constexpr):
    pid = tl.program_id(0)
    b, start = cm.chunk_of(pid, C, TILES, BLOCK)
    base = b.to(tl.int64) * stride
    acc = tl.zeros([BLOCK], dtype=ACC)
    for t in range(0, TILES):
        offs = start + t * BLOCK + tl.arange(0, BLOCK)
        x = cm.load_acc(g + base, offs, offs < M, ACC)
        acc += x * x
    tl.store(part + pid, tl.sum(acc, axis=0))
    if cm.arrive(cnt, B * C):
        center = cm.scalar(center_hi, center_lo, ACC)
        phis = tl.zeros([FR], dtype=ACC)
        for r0 in range(0, B, FR):
            rows = r0 + tl.arange(0, FR)
            n = _terms.sqrt_rn(cm.row_sums(part, r0, B, C, FR, FC))
            tl.store(norms + rows, n, mask=rows < B)
            phis += tl.where(rows < B, _terms.penalty_phi(n - center, ONE_SIDED), 0.0)
        tl.store(loss, cm.narrow(_terms.div_rn(tl.sum(phis, axis=0), tl.cast(B, ACC)), loss))
        cm.depart(cnt)


@triton.jit
def _gnp_bwd(gout, g, norms, dg, B, M, stride, C, TILES, center_hi, center_lo,
             ONE_SIDED: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    b, start = cm.chunk_of(tl.program_id(0), C, TILES, BLOCK)
    base = b.to(tl.int64) * stride
    center = cm.scalar(center_hi, center_lo, ACC)
    s = _terms.penalty_grad_scale(tl.load(norms + b), center, tl.load(gout).to(ACC), tl.cast(B, ACC), ONE_SIDED)
    for t in range(0, TILES):
        offs = start + t * BLOCK + tl.arange(0, BLOCK)
        m = offs < M
        x = cm.load_acc(g + base, offs, m, ACC)
        tl.store(dg + base + offs, cm.narrow(x * s, dg), mask=m)


@cm.implement("grad_norm_penalty_forward")
def grad_norm_penalty_forward(grads: torch.Tensor, center: float, one_sided: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, per-sample norms in :data:`NORM_DTYPE`); sums of squares, norms and the backward's
    scale are in fp64 for every dtype (see the reference)."""
    (g,) = _layout.in_common_layout(grads)
    B, M = g.shape[0], cm.row_stride(g)
    block, c, tiles = cm.row_split(B, M, g.dtype, g.device)
    loss = g.new_empty(())
    norms = torch.empty(B, dtype=NORM_DTYPE, device=g.device)
    part = torch.empty(B * c, dtype=NORM_DTYPE, device=g.device)
    with cm.on_device(g):
        _gnp_fwd[(B * c,)](
            cm.read_only(g), part, cm.counter(g.device), loss, norms, B, M, M, c, tiles, *cm.split_scalar(center),
            ONE_SIDED=one_sided, ACC=tl.float64, BLOCK=block, FR=cm.FIN_ROWS, FC=cm.FIN_CHUNKS,
            **cm.LAUNCH,
        )
    return loss, norms


@cm.implement("grad_norm_penalty")
def grad_norm_penalty(grads: torch.Tensor, center: float, one_sided: bool) -> torch.Tensor:
    """The loss only (the op below autograd, e.g. under ``torch.inference_mode``)."""
    return grad_norm_penalty_forward(grads, center, one_sided)[0]


@cm.implement("grad_norm_penalty_backward")
def grad_norm_penalty_backward(
    grad_out: torch.Tensor, grads: torch.Tensor, norms: torch.Tensor, center: float, one_sided: bool
) -> torch.Tensor:
    """The penalty's gradient w.r.t. grads, in grads' layout when sample-blocked."""
    (g,) = _layout.in_common_layout(grads)
    dg = _layout.empty_in_common_layout(grads)
    B, M = g.shape[0], cm.row_stride(g)
    if g.numel() == 0:
        return dg
    block, c, tiles = cm.row_split(B, M, g.dtype, g.device)
    with cm.on_device(g):
        _gnp_bwd[(B * c,)](
            cm.read_only(grad_out.reshape(())), cm.read_only(g), cm.read_only(norms), dg, B, M, M, c, tiles,
            *cm.split_scalar(center), ONE_SIDED=one_sided, ACC=tl.float64, BLOCK=block, **cm.LAUNCH,
        )
    return dg
