"""``interpolate`` in Triton: x̂ = fake + alpha_b (real − fake), forward and backward, one launch
each. The backward reads the incoming gradient (and real, fake only when alpha's gradient is
asked for) once; alpha's gradient Σ g (real − fake) per sample is reduced deterministically by
the last program (see :mod:`fastgan.triton._common`)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastgan.ops import _layout
from fastgan.triton import _common as cm
from fastgan.triton import _terms


@triton.jit
def _interpolate_fwd(real, fake, alpha, out, M, stride, C, TILES, ACC: tl.constexpr, BLOCK: tl.constexpr):
    b, start = cm.chunk_of(tl.program_id(0), C, TILES, BLOCK)
    a = tl.load(alpha + b).to(ACC)
    base = b.to(tl.int64) * stride
    for t in range(0, TILES):
        offs = start + t * BLOCK + tl.arange(0, BLOCK)
        m = offs < M
        r = cm.load_acc(real + base, offs, m, ACC)
        f = cm.load_acc(fake + base, offs, m, ACC)
        tl.store(out + base + offs, _terms.lerp(r, f, a).to(out.dtype.element_ty), mask=m)


@triton.jit
def _interpolate_bwd(g, real, fake, alpha, dreal, dfake, dalpha, part, cnt, B, M, stride, C, TILES,
                     NEED_REAL: tl.constexpr, NEED_FAKE: tl.constexpr, NEED_ALPHA: tl.constexpr,
                     ACC: tl.constexpr, BLOCK: tl.constexpr, FR: tl.constexpr, FC: tl.constexpr):
    pid = tl.program_id(0)
    b, start = cm.chunk_of(pid, C, TILES, BLOCK)
    a = tl.load(alpha + b).to(ACC)
    base = b.to(tl.int64) * stride
    acc = tl.zeros([BLOCK], dtype=ACC)
    for t in range(0, TILES):
        offs = start + t * BLOCK + tl.arange(0, BLOCK)
        m = offs < M
        v = cm.load_acc(g + base, offs, m, ACC)
        if NEED_REAL:
            tl.store(dreal + base + offs, (v * a).to(dreal.dtype.element_ty), mask=m)
        if NEED_FAKE:
            tl.store(dfake + base + offs, (v * (1.0 - a)).to(dfake.dtype.element_ty), mask=m)
        if NEED_ALPHA:
            r = cm.load_acc(real + base, offs, m, ACC)
            f = cm.load_acc(fake + base, offs, m, ACC)
            acc += v * (r - f)
    if NEED_ALPHA:
        tl.store(part + pid, tl.sum(acc, axis=0))
        if cm.arrive(cnt, B * C):
            for r0 in range(0, B, FR):
                rows = r0 + tl.arange(0, FR)
                sums = cm.row_sums(part, r0, B, C, FR, FC)
                tl.store(dalpha + rows, sums.to(dalpha.dtype.element_ty), mask=rows < B)
            cm.depart(cnt)


@cm.implement("interpolate")
def interpolate(real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """fake + alpha_b (real − fake), computed in fp32 (fp64 for fp64)."""
    r, f = _layout.in_common_layout(real, fake)
    out = _layout.empty_in_common_layout(real, fake)
    B, M = r.shape[0], cm.row_stride(r)
    if out.numel() == 0:
        return out
    block, c, tiles = cm.row_split(B, M, r.dtype, r.device)
    with cm.on_device(r):
        _interpolate_fwd[(B * c,)](
            cm.read_only(r), cm.read_only(f), cm.read_only(alpha.contiguous()), out, M, M, c, tiles,
            ACC=cm.tl_acc(r.dtype), BLOCK=block, **cm.LAUNCH,
        )
    return out


@cm.implement("interpolate_backward")
def interpolate_backward(
    grad: torch.Tensor, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor,
    need_real: bool, need_fake: bool, need_alpha: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients w.r.t. real, fake and alpha (an empty placeholder for each one not needed); real
    and fake are read only for alpha's gradient."""
    read = (grad, real, fake) if need_alpha else (grad,)
    if need_alpha:
        g, r, f = _layout.in_common_layout(*read)
    else:
        (g,) = _layout.in_common_layout(grad)
        r = f = g  # not read
    placeholder = _layout.not_needed(g)
    dreal = _layout.empty_in_common_layout(*read) if need_real else placeholder
    dfake = _layout.empty_in_common_layout(*read) if need_fake else placeholder.clone()
    dalpha = alpha.new_empty(alpha.shape) if need_alpha else placeholder.clone()
    B, M = g.shape[0], cm.row_stride(g)
    if not (need_real or need_fake or need_alpha):
        return dreal, dfake, dalpha
    if g.numel() == 0:
        if need_alpha:
            dalpha.zero_()
        return dreal, dfake, dalpha
    block, c, tiles = cm.row_split(B, M, g.dtype, g.device)
    part = torch.empty(B * c if need_alpha else 1, dtype=cm.acc_dtype(g.dtype), device=g.device)
    with cm.on_device(g):
        unused = cm.read_only(g)  # the pointer argument of a gradient not written
        _interpolate_bwd[(B * c,)](
            cm.read_only(g), cm.read_only(r), cm.read_only(f), cm.read_only(alpha.contiguous()),
            dreal if need_real else unused, dfake if need_fake else unused, dalpha if need_alpha else unused,
            part, cm.counter(g.device), B, M, M, c, tiles,
            NEED_REAL=need_real, NEED_FAKE=need_fake, NEED_ALPHA=need_alpha, ACC=cm.tl_acc(g.dtype),
            BLOCK=block, FR=cm.FIN_ROWS, FC=cm.FIN_CHUNKS, **cm.LAUNCH,
        )
    return dreal, dfake, dalpha
