"""``grad_norm_penalty`` in Triton: mean_b φ(‖g_b‖₂ − center), one launch per direction.

Sums of squares, norms and the backward's per-sample scale are in fp64 for every input dtype
(see :data:`fastgan.ops.grad_norm_penalty.NORM_DTYPE`). Forward: every program sums the squares
of its chunk of a row; the last program adds each row's
partials in chunk order (deterministic), takes the norms, and writes them and the loss. Backward:
dg = g · gout φ'(n_b − center) / (B n_b) with the saved norms, element-wise (0 for a zero norm);
the incoming gradient is read on the device, never on the host."""

from __future__ import annotations

import importlib

import torch
import triton
import triton.language as tl

from fastgan.ops.grad_norm_penalty import NORM_DTYPE
from fastgan.ops import _autograd
from fastgan.triton import _common as cm
from fastgan.triton import _terms

#: the operator's module in fastgan.ops: its fake implementations are the Triton ops' too
ops_op = importlib.import_module("fastgan.ops.grad_norm_penalty")

NAME = "fastgan_triton::grad_norm_penalty"


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


@torch.library.custom_op(NAME + "_forward", mutates_args=())
def grad_norm_penalty_forward(grads: torch.Tensor, center: float, one_sided: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, per-sample norms in the accumulation dtype)."""
    (g,) = cm.common_layout(grads)
    acc = NORM_DTYPE  # sums of squares, norms and the backward's scale in fp64 (see the reference)
    B, M = g.shape[0], cm.row_stride(g)
    block, c, tiles = cm.row_split(B, M, g.dtype, g.device)
    loss = g.new_empty(())
    norms = torch.empty(B, dtype=acc, device=g.device)
    part = torch.empty(B * c, dtype=acc, device=g.device)
    with cm.on_device(g):
        _gnp_fwd[(B * c,)](
            g, part, cm.counter(g.device), loss, norms, B, M, M, c, tiles, *cm.split_scalar(center),
            ONE_SIDED=one_sided, ACC=tl.float64, BLOCK=block, FR=cm.FIN_ROWS, FC=cm.FIN_CHUNKS,
            **cm.LAUNCH,
        )
    return loss, norms


grad_norm_penalty_forward.register_fake(ops_op.fake_forward)


@torch.library.custom_op(NAME + "_backward", mutates_args=())
def grad_norm_penalty_backward(
    grad_out: torch.Tensor, grads: torch.Tensor, norms: torch.Tensor, center: float, one_sided: bool
) -> torch.Tensor:
    """The penalty's gradient w.r.t. grads, in grads' layout when sample-blocked."""
    (g,) = cm.common_layout(grads)
    dg = torch.empty_like(g)
    B, M = g.shape[0], cm.row_stride(g)
    if g.numel() == 0:
        return dg
    block, c, tiles = cm.row_split(B, M, g.dtype, g.device)
    with cm.on_device(g):
        _gnp_bwd[(B * c,)](
            grad_out.reshape(()), g, norms, dg, B, M, M, c, tiles, *cm.split_scalar(center),
            ONE_SIDED=one_sided, ACC=tl.float64, BLOCK=block, **cm.LAUNCH,
        )
    return dg


grad_norm_penalty_backward.register_fake(ops_op.fake_backward)


def _setup_context(ctx, inputs, output):
    grads, center, one_sided = inputs
    ctx.mark_non_differentiable(output[1])
    ctx.set_materialize_grads(False)  # no zeros for the norms' (absent) gradient
    ctx.save_for_backward(cm.savable(grads), output[1])
    ctx.center, ctx.one_sided = center, one_sided


def _backward(ctx, grad_loss, grad_norms):
    grads, norms = ctx.saved_tensors
    if grad_loss is None:
        return None, None, None
    differentiable = _autograd.differentiable(grad_loss, grads)
    backward = ops_op.backward_composite if differentiable else grad_norm_penalty_backward
    return backward(grad_loss, grads, norms, ctx.center, ctx.one_sided), None, None


grad_norm_penalty_forward.register_autograd(_backward, setup_context=_setup_context)


def grad_norm_penalty(grads: torch.Tensor, center: float, one_sided: bool) -> torch.Tensor:
    """The backend entry point: the loss only."""
    return torch.ops.fastgan_triton.grad_norm_penalty_forward(grads, center, one_sided)[0]
