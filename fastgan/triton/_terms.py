"""Element-wise terms of the operators and their derivatives for the Triton kernels, written
once: the same definitions as ``csrc/common/terms.h`` (the C++ CPU and CUDA kernels), with the
same NaN policy (a NaN operand takes the branch that carries it through)."""

from __future__ import annotations

import triton
import triton.language as tl

from fastgan.ops.adversarial_loss import KINDS

#: The kinds' codes (the kernels' ``K`` constexpr): their positions in
#: :data:`fastgan.ops.adversarial_loss.KINDS`, the one list of kinds.
BCE, WGAN, LSGAN, HINGE, MARGIN = (tl.constexpr(KINDS.index(k)) for k in ("bce", "wgan", "lsgan", "hinge", "margin"))


def kind_code(kind: str) -> int:
    """The code of ``kind`` (one of :data:`KINDS`) passed to the kernels as ``K``."""
    return KINDS.index(kind)


@triton.jit
def div_rn(a, b):
    """a / b correctly rounded (fp32's default division on GPUs is approximate)."""
    if a.dtype == tl.float64:
        r = a / b
    else:
        r = tl.div_rn(a, b)
    return r


@triton.jit
def sqrt_rn(x):
    """Correctly rounded square root (fp32's default is approximate)."""
    if x.dtype == tl.float64:
        r = tl.sqrt(x)
    else:
        r = tl.sqrt_rn(x)
    return r


@triton.jit
def relu(t):
    return tl.where(t < 0, 0.0, t).to(t.dtype)


@triton.jit
def relu_grad(t):
    """0 at t <= 0 (as autograd defines it), 1 elsewhere (NaN included)."""
    return tl.where(t <= 0, 0.0, 1.0).to(t.dtype)


@triton.jit
def sign(d):
    """sign with sign(0) = 0 and sign(NaN) = 0 (the derivative of |d| as autograd defines it)."""
    return tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0)).to(d.dtype)


@triton.jit
def log1p_small(u):
    """log(1 + u) for u in [0, 1]: log of the rounded 1 + u, corrected by the rounding error of
    1 + u divided by 1 + u (the first-order term of log1p's error)."""
    w = 1.0 + u
    return tl.log(w) + div_rn(u - (w - 1.0), w)


@triton.jit
def softplus(x):
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(−|x|))."""
    return relu(x) + log1p_small(tl.exp(-tl.abs(x)))


@triton.jit
def sigmoid(x):
    """1 / (1 + exp(−x)) without overflow; both branches are evaluated, the right one kept."""
    e_neg = tl.exp(-tl.abs(x))
    pos = div_rn(1.0 + 0.0 * e_neg, 1.0 + e_neg)
    return tl.where(x >= 0, pos, div_rn(e_neg, 1.0 + e_neg))


@triton.jit
def adv_term(x, target, margin, K: tl.constexpr, REAL: tl.constexpr):
    """t_real(x) (REAL) or t_fake(x) of kind K (table in fastgan.ops.adversarial_loss)."""
    if K == BCE:
        if REAL:
            r = softplus(-x)
        else:
            r = softplus(x)
    elif K == WGAN:
        if REAL:
            r = -x
        else:
            r = x
    elif K == LSGAN:
        r = 0.5 * (x - target) * (x - target)
    elif K == HINGE:
        if REAL:
            r = relu(margin - x)
        else:
            r = relu(margin + x)
    else:  # MARGIN (EBGAN)
        if REAL:
            r = x
        else:
            r = relu(margin - x)
    return r


@triton.jit
def adv_term_grad(x, target, margin, K: tl.constexpr, REAL: tl.constexpr):
    """d t(x) / dx of :func:`adv_term`."""
    if K == BCE:
        if REAL:
            r = -sigmoid(-x)
        else:
            r = sigmoid(x)
    elif K == WGAN:
        if REAL:
            r = tl.zeros_like(x) - 1.0
        else:
            r = tl.zeros_like(x) + 1.0
    elif K == LSGAN:
        r = x - target
    elif K == HINGE:
        if REAL:
            r = -relu_grad(margin - x)
        else:
            r = relu_grad(margin + x)
    else:  # MARGIN
        if REAL:
            r = tl.zeros_like(x) + 1.0
        else:
            r = -relu_grad(margin - x)
    return r


@triton.jit
def penalty_phi(t, ONE_SIDED: tl.constexpr):
    """φ(t) = t², or max(t, 0)² when one-sided."""
    if ONE_SIDED:
        r = relu(t)
    else:
        r = t
    return r * r


@triton.jit
def penalty_grad_scale(norm, center, gout, batch, ONE_SIDED: tl.constexpr):
    """gout · φ'(norm − center) / (batch · norm), and 0 where norm == 0 (finite gradient)."""
    t = norm - center
    if ONE_SIDED:
        t = relu(t)
    safe = tl.where(norm == 0, 1.0, norm)
    return tl.where(norm == 0, 0.0, div_rn(gout * (2.0 * t), batch * safe))


@triton.jit
def rec_term(d, P: tl.constexpr):
    """|d|^p for p in {1, 2}."""
    if P == 1:
        r = tl.abs(d)
    else:
        r = d * d
    return r


@triton.jit
def rec_term_grad(d, P: tl.constexpr):
    if P == 1:
        r = sign(d)
    else:
        r = 2.0 * d
    return r


@triton.jit
def lerp(real, fake, alpha):
    """fake + alpha (real − fake)."""
    return fake + alpha * (real - fake)
