"""``adversarial_loss`` in Triton: mean(t_real(real)) + mean(t_fake(fake)) for every kind, one
launch per direction covering both sides (the first programs take chunks of ``real``, the others
chunks of ``fake``). Forward: the last program adds each side's partials in chunk order
(deterministic). Backward: element-wise, with the incoming gradient read on the device."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from fastgan.ops import _layout
from fastgan.triton import _common as cm
from fastgan.triton import _terms


@triton.jit
def _side_sum(x, start, n, TILES, target, margin, K: tl.constexpr, REAL: tl.constexpr, ACC: tl.constexpr,
              BLOCK: tl.constexpr):
    acc = tl.zeros([BLOCK], dtype=ACC)
    for t in range(0, TILES):
        offs = start + t * BLOCK + tl.arange(0, BLOCK)
        m = offs < n
        v = _terms.adv_term(cm.load_acc(x, offs, m, ACC), target, margin, K, REAL)
        acc += tl.where(m, v, 0.0)
    return tl.sum(acc, axis=0)


@triton.jit
def _adv_fwd(real, fake, part, cnt, loss, NR, NF, CR, CF, TILES_R, TILES_F, tr_hi, tr_lo, tf_hi, tf_lo, mg_hi, mg_lo,
             K: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr, FC: tl.constexpr):
    pid = tl.program_id(0)
    margin = cm.scalar(mg_hi, mg_lo, ACC)
    if pid < CR:
        s = _side_sum(real, pid.to(tl.int64) * TILES_R * BLOCK, NR, TILES_R, cm.scalar(tr_hi, tr_lo, ACC), margin,
                      K, True, ACC, BLOCK)
    else:
        s = _side_sum(fake, (pid - CR).to(tl.int64) * TILES_F * BLOCK, NF, TILES_F, cm.scalar(tf_hi, tf_lo, ACC),
                      margin, K, False, ACC, BLOCK)
    tl.store(part + pid, s)
    if cm.arrive(cnt, CR + CF):
        out = tl.zeros([], dtype=ACC)
        if CR > 0:
            out = _terms.div_rn(cm.total(part, CR, FC), tl.cast(NR, ACC))
        if CF > 0:
            out = out + _terms.div_rn(cm.total(part + CR, CF, FC), tl.cast(NF, ACC))
        tl.store(loss, out.to(loss.dtype.element_ty))
        cm.depart(cnt)


@triton.jit
def _side_grad(x, dx, start, n, TILES, scale, target, margin, K: tl.constexpr, REAL: tl.constexpr,
               ACC: tl.constexpr, BLOCK: tl.constexpr):
    for t in range(0, TILES):
        offs = start + t * BLOCK + tl.arange(0, BLOCK)
        m = offs < n
        v = scale * _terms.adv_term_grad(cm.load_acc(x, offs, m, ACC), target, margin, K, REAL)
        tl.store(dx + offs, v.to(dx.dtype.element_ty), mask=m)


@triton.jit
def _adv_bwd(gout, real, fake, dreal, dfake, NR, NF, CR, TILES_R, TILES_F, tr_hi, tr_lo, tf_hi, tf_lo, mg_hi, mg_lo,
             K: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    g = tl.load(gout).to(ACC)
    margin = cm.scalar(mg_hi, mg_lo, ACC)
    if pid < CR:
        _side_grad(real, dreal, pid.to(tl.int64) * TILES_R * BLOCK, NR, TILES_R, _terms.div_rn(g, tl.cast(NR, ACC)),
                   cm.scalar(tr_hi, tr_lo, ACC), margin, K, True, ACC, BLOCK)
    else:
        _side_grad(fake, dfake, (pid - CR).to(tl.int64) * TILES_F * BLOCK, NF, TILES_F, _terms.div_rn(g, tl.cast(NF, ACC)),
                   cm.scalar(tf_hi, tf_lo, ACC), margin, K, False, ACC, BLOCK)


def _sides(real, fake):
    """(a present side, real, fake) as the kernels read them: dense, a present side standing in
    for an absent one (not read)."""
    any_ = real if real is not None else fake
    r = _layout.dense(real) if real is not None else any_
    f = _layout.dense(fake) if fake is not None else any_
    return any_, r, f


def _split(t, present, device, dtype):
    if not present:
        return cm.block_size(dtype, device), 0, 1
    return cm.row_split(1, t.numel(), dtype, device)


def _params(real_target, fake_target, margin):
    return (*cm.split_scalar(real_target), *cm.split_scalar(fake_target), *cm.split_scalar(margin))


@cm.implement("adversarial_loss")
def adversarial_loss(
    real: torch.Tensor | None, fake: torch.Tensor | None, kind: str,
    real_target: float, fake_target: float, margin: float,
) -> torch.Tensor:
    """Sum of the means of the present sides' terms, accumulated in fp32 (fp64 for fp64)."""
    any_, r, f = _sides(real, fake)
    block, cr, tiles_r = _split(r, real is not None, any_.device, any_.dtype)
    _, cf, tiles_f = _split(f, fake is not None, any_.device, any_.dtype)
    loss = any_.new_empty(())
    part = torch.empty(cr + cf, dtype=cm.acc_dtype(any_.dtype), device=any_.device)
    with cm.on_device(any_):
        _adv_fwd[(cr + cf,)](
            cm.read_only(r), cm.read_only(f), part, cm.counter(any_.device), loss, r.numel(), f.numel(), cr, cf,
            tiles_r, tiles_f, *_params(real_target, fake_target, margin),
            K=_terms.kind_code(kind), ACC=cm.tl_acc(any_.dtype), BLOCK=block, FC=cm.FIN_CHUNKS, **cm.LAUNCH,
        )
    return loss


@cm.implement("adversarial_loss_backward")
def adversarial_loss_backward(
    grad_out: torch.Tensor, real: torch.Tensor | None, fake: torch.Tensor | None, kind: str,
    real_target: float, fake_target: float, margin: float, need_real: bool, need_fake: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients w.r.t. real and fake (an empty placeholder for one not needed)."""
    any_, r, f = _sides(real, fake)
    placeholder = _layout.not_needed(any_)
    dreal = _layout.empty_dense_like(real) if need_real else placeholder
    dfake = _layout.empty_dense_like(fake) if need_fake else placeholder.clone()
    block, cr, tiles_r = _split(r, need_real, any_.device, any_.dtype)
    _, cf, tiles_f = _split(f, need_fake, any_.device, any_.dtype)
    if cr + cf == 0:
        return dreal, dfake
    r_in, f_in = cm.read_only(r), cm.read_only(f)
    with cm.on_device(any_):
        _adv_bwd[(cr + cf,)](
            cm.read_only(grad_out.reshape(())), r_in, f_in, dreal if need_real else r_in, dfake if need_fake else f_in,
            r.numel(), f.numel(), cr, tiles_r, tiles_f, *_params(real_target, fake_target, margin),
            K=_terms.kind_code(kind), ACC=cm.tl_acc(any_.dtype), BLOCK=block, **cm.LAUNCH,
        )
    return dreal, dfake
