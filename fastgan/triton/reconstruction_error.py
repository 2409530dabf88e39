"""``reconstruction_error`` in Triton: per-sample mean |x − recon|^p (p = 1, 2), one launch per
direction. Forward: each program sums its chunk of a row; the last program adds each row's
partials in chunk order (deterministic) and writes the (B,) means. Backward: element-wise with
the per-sample incoming gradient read on the device."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastgan.ops import _layout
from fastgan.triton import _common as cm
from fastgan.triton import _terms


@triton.jit
def _rec_fwd(x, r, part, cnt, out, B, M, stride, C, TILES,
             P: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr, FR: tl.constexpr, FC: tl.constexpr):
    pid = tl.program_id(0)
    b, start = cm.chunk_of(pid, C, TILES, BLOCK)
    base = b.to(tl.int64) * stride
    acc = tl.zeros([BLOCK], dtype=ACC)
    for t in range(0, TILES):
        offs = start + t * BLOCK + tl.arange(0, BLOCK)
        m = offs < M
        acc += _terms.rec_term(cm.load_acc(x + base, offs, m, ACC) - cm.load_acc(r + base, offs, m, ACC), P)
    tl.store(part + pid, tl.sum(acc, axis=0))
    if cm.arrive(cnt, B * C):
        for r0 in range(0, B, FR):
            rows = r0 + tl.arange(0, FR)
            mean = _terms.div_rn(cm.row_sums(part, r0, B, C, FR, FC), tl.cast(M, ACC))
            tl.store(out + rows, mean.to(out.dtype.element_ty), mask=rows < B)
        cm.depart(cnt)


@triton.jit
def _rec_bwd(gout, gout_stride, x, r, dx, dr, M, stride, C, TILES,
             NEED_X: tl.constexpr, NEED_R: tl.constexpr, P: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    b, start = cm.chunk_of(tl.program_id(0), C, TILES, BLOCK)
    base = b.to(tl.int64) * stride
    s = tl.load(gout + b * gout_stride).to(ACC) * _terms.div_rn(tl.full([], 1.0, ACC), tl.cast(M, ACC))
    for t in range(0, TILES):
        offs = start + t * BLOCK + tl.arange(0, BLOCK)
        m = offs < M
        v = s * _terms.rec_term_grad(cm.load_acc(x + base, offs, m, ACC) - cm.load_acc(r + base, offs, m, ACC), P)
        if NEED_X:
            tl.store(dx + base + offs, v.to(dx.dtype.element_ty), mask=m)
        if NEED_R:
            tl.store(dr + base + offs, (-v).to(dr.dtype.element_ty), mask=m)


@cm.implement("reconstruction_error")
def reconstruction_error(x: torch.Tensor, recon: torch.Tensor, p: int) -> torch.Tensor:
    """Per-sample mean of |x − recon|^p, shape (B,), accumulated in fp32 (fp64 for fp64)."""
    xs, rs = _layout.in_common_layout(x, recon)
    B, M = xs.shape[0], cm.row_stride(xs)
    out = xs.new_empty((B,))
    block, c, tiles = cm.row_split(B, M, xs.dtype, xs.device)
    part = torch.empty(B * c, dtype=cm.acc_dtype(xs.dtype), device=xs.device)
    with cm.on_device(xs):
        _rec_fwd[(B * c,)](
            cm.read_only(xs), cm.read_only(rs), part, cm.counter(xs.device), out, B, M, M, c, tiles,
            P=p, ACC=cm.tl_acc(xs.dtype), BLOCK=block, FR=cm.FIN_ROWS, FC=cm.FIN_CHUNKS, **cm.LAUNCH,
        )
    return out


@cm.implement("reconstruction_error_backward")
def reconstruction_error_backward(
    grad_out: torch.Tensor, x: torch.Tensor, recon: torch.Tensor, p: int, need_x: bool, need_recon: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients w.r.t. x and recon (an empty placeholder for one not needed)."""
    xs, rs = _layout.in_common_layout(x, recon)
    placeholder = _layout.not_needed(xs)
    dx = _layout.empty_in_common_layout(x, recon) if need_x else placeholder
    dr = _layout.empty_in_common_layout(x, recon) if need_recon else placeholder.clone()
    if not (need_x or need_recon) or xs.numel() == 0:
        return dx, dr
    B, M = xs.shape[0], cm.row_stride(xs)
    block, c, tiles = cm.row_split(B, M, xs.dtype, xs.device)
    x_in, r_in = cm.read_only(xs), cm.read_only(rs)
    with cm.on_device(xs):
        _rec_bwd[(B * c,)](
            cm.read_only(grad_out), grad_out.stride(0), x_in, r_in, dx if need_x else x_in, dr if need_recon else x_in,
            M, M, c, tiles, NEED_X=need_x, NEED_R=need_recon, P=p, ACC=cm.tl_acc(xs.dtype), BLOCK=block, **cm.LAUNCH,
        )
    return dx, dr
