"""The seven GAN families of docs/design.md §1 (and hinge), as functions.

Conventions:

* Discriminator outputs are raw scores / logits (no sigmoid applied by the caller), batch first,
  of any shape — ``(B,)``, ``(B, 1)``, ``(B, 1, H, W)`` for PatchGAN; each mean runs over all of
  their elements.
* Energies (EBGAN) and reconstruction errors (BEGAN) are per-sample values of shape ``(B,)``,
  usually from :func:`reconstruction_error`.
* Every loss returns a 0-dim tensor; reductions accumulate in fp32 (fp64 for fp64 inputs).
* Tensors are dense (strided) tensors of dtype float16, bfloat16, float32 or float64; numeric
  hyper-parameters are real numbers (Python or NumPy ints and floats, not bools), finite.
  Anything else is a ``TypeError`` / ``ValueError`` naming the argument (``docs/errors.md``).
* Inputs are never modified (:func:`clip_weights_` clamps its parameters in place, by design).
  Argument checks read shapes, dtypes, devices, autograd metadata and Python numbers only —
  never tensor values — so no function here synchronises with the device. One exception, off
  the normal path: a discriminator loss whose fake scores need no gradient while the real ones
  do reads the fake scores, to refuse a PyTorch target tensor passed in their place
  (docs/porting.md).
* Every function compiles with ``torch.compile(fullgraph=True)``, with static or dynamic shapes,
  and exports with ``torch.export``.

The functions are thin compositions of the operators in :mod:`fastgan.ops`, which run on the
backend selected by :func:`fastgan.use_backend`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from fastgan import _deprecation as deprecation
from fastgan import _mistakes, _penalties
from fastgan import _validation as v
from fastgan.ops import adversarial_loss as _adversarial_loss_op
# The operators' functions: defined with their operators (fastgan/ops/<op>.py), public here.
from fastgan.ops.adversarial_loss import adversarial_loss
from fastgan.ops.grad_norm_penalty import grad_norm_penalty
from fastgan.ops.interpolate import interpolate
from fastgan.ops.reconstruction_error import reconstruction_error

__all__ = [
    "gan_discriminator_loss",
    "gan_generator_loss",
    "wgan_critic_loss",
    "wgan_generator_loss",
    "clip_weights_",
    "interpolate",
    "grad_norm_penalty",
    "gradient_penalty",
    "r1_penalty",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "reconstruction_error",
    "ebgan_discriminator_loss",
    "ebgan_generator_loss",
    "pulling_away_term",
    "began_discriminator_loss",
    "began_generator_loss",
    "began_update",
    "adversarial_loss",
]

_adv = _adversarial_loss_op.call  # the checks are each family's own


# ----------------------------------------------------------------------------------- GAN / CGAN
def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """GAN / CGAN discriminator loss (eq. 3): ``mean(softplus(−D(x))) + mean(softplus(D(G(z))))``,
    the binary cross-entropy of the logits against 1 (real) and 0 (fake).

    The arguments are D's two outputs, not PyTorch's ``(input, target)``: fake logits that need
    no gradient while the real ones do and hold only 0s and 1s (a target tensor) are a
    ``ValueError``, and so are logits that are the output of a sigmoid (docs/porting.md)."""
    names = ("real_logits", "fake_logits")
    v.check_scores(names, real_logits, fake_logits)
    _mistakes.check_not_sigmoid(names, real_logits, fake_logits)
    _mistakes.check_not_targets(names, real_logits, fake_logits)
    return _adv(real_logits, fake_logits, "bce")


def gan_generator_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """GAN / CGAN generator loss.

    Non-saturating (default): ``mean(softplus(−D(G(z))))``. Saturating (eq. 3 as written, the
    minimax form): ``−mean(softplus(D(G(z))))``. Logits that are the output of a sigmoid are a
    ``ValueError`` (docs/porting.md).
    """
    v.check_scores(("fake_logits",), fake_logits)
    _mistakes.refuse_target_argument("gan_generator_loss", "saturating", saturating)
    _mistakes.check_not_sigmoid(("fake_logits",), fake_logits)
    if v.check_bool("saturating", saturating):
        return -_adv(None, fake_logits, "bce")
    return _adv(fake_logits, None, "bce")


# ---------------------------------------------------------------------------------------- WGAN
def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss (eq. 5): ``mean(D(G(z))) − mean(D(x))``. Follow each critic step with
    :func:`clip_weights_` (WGAN) or add :func:`gradient_penalty` (WGAN-GP). A target tensor
    passed as ``fake_scores`` is a ``ValueError``, as in :func:`gan_discriminator_loss`."""
    v.check_scores(("real_scores", "fake_scores"), real_scores, fake_scores)
    _mistakes.check_not_targets(("real_scores", "fake_scores"), real_scores, fake_scores)
    return _adv(real_scores, fake_scores, "wgan")


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN / WGAN-GP generator loss: ``−mean(D(G(z)))``."""
    v.check_scores(("fake_scores",), fake_scores)
    return _adv(fake_scores, None, "wgan")


def clip_weights_(parameters: nn.Module | torch.Tensor | Iterable[torch.Tensor], clip_value: float = 0.01) -> None:
    """Clamp every parameter to ``[−clip_value, clip_value]`` in place (WGAN's weight clipping).

    ``parameters`` is a module, one tensor, or an iterable of (floating) tensors; ``clip_value``
    is a finite number > 0. The clamp runs as multi-tensor (``torch._foreach_*``) calls over all
    parameters, not a Python loop of kernels, and outside autograd. NaN parameters stay NaN.
    """
    c = v.check_nonneg("clip_value", clip_value)
    if c == 0:
        raise ValueError("clip_value must be > 0, got 0")
    if isinstance(parameters, nn.Module):
        params = list(parameters.parameters())
    elif isinstance(parameters, torch.Tensor):
        params = [parameters]
    else:
        try:
            params = list(parameters)
        except TypeError:
            raise TypeError(
                "parameters must be an nn.Module, a tensor or an iterable of tensors, "
                f"got {type(parameters).__name__}"
            ) from None
    for i, p in enumerate(params):
        v.check_float_tensor(f"parameters[{i}]", p)
    if not params:
        return
    with torch.no_grad():
        torch._foreach_clamp_min_(params, -c)
        torch._foreach_clamp_max_(params, c)


# ------------------------------------------------------------------------------------- WGAN-GP
def gradient_norm_penalty(grads: torch.Tensor, center: float = 1.0, one_sided: bool = False) -> torch.Tensor:
    """Deprecated name of :func:`grad_norm_penalty` (the operator's one name); it will be removed
    in the next release."""
    deprecation.warn(
        "fastgan.functional.gradient_norm_penalty is deprecated and will be removed in the next "
        "release; use fastgan.functional.grad_norm_penalty (the same function)"
    )
    return grad_norm_penalty(grads, center, one_sided)


def gradient_penalty(
    critic: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    gp_weight: float = 10.0,
    center: float = 1.0,
    one_sided: bool = False,
    alpha: Any = None,
    *,
    generator: torch.Generator | None = None,
    **critic_kwargs: Any,
) -> torch.Tensor:
    """WGAN-GP's gradient penalty (eq. 6): ``gp_weight · mean_b((‖∇x̂ D(x̂)_b‖₂ − center)²)``.

    ``x̂_b = fake_b + α_b (real_b − fake_b)`` with one ``α_b ~ U[0, 1]`` **per sample**, drawn on the
    inputs' device in their dtype (from ``generator``, a ``torch.Generator`` on that device, when
    given) unless ``alpha`` is given. ``alpha`` holds one value per sample in any per-sample
    shape — (B,), (B, 1), (B, 1, 1, 1), (B, 1, …, 1) with at most ``real.dim()`` dimensions — as a
    floating tensor on ``real``'s device or a NumPy floating array; it is converted to ``real``'s
    dtype (rounded when that is narrower, e.g. a float64 α for float32 data). Another batch size,
    a shape that is not per sample (such as (B, C, 1, 1)), or a non-floating dtype is refused.
    The norm runs per sample over all non-batch dimensions. ``real`` and ``fake`` are sample
    points of the same shape, dtype (under autocast their precisions may differ: both are
    interpolated in the wider one) and device, treated as constants (detached, not modified).
    ``gp_weight`` and ``center`` are finite numbers >= 0; ``one_sided=True`` gives
    ``max(0, ‖g‖ − center)²``. ``weight=`` is the deprecated name of ``gp_weight`` (the loss
    objects' name).

    ``critic(x̂, **critic_kwargs)`` (e.g. ``labels=`` for a conditional critic) must return
    floating scores that depend on x̂ through autograd: a critic that ignores or detaches its
    input, or returns a constant or a value of its parameters only, is a ``ValueError``. The
    gradient is taken with ``create_graph=True`` (with ``torch.func.grad`` while
    ``torch.compile`` traces: the penalty then compiles into one graph), so the returned penalty
    back-propagates into the critic's parameters.

    Lazy regularisation (StyleGAN2 §3.1): call it on every k-th critic step only, with
    ``gp_weight=k * λ`` (``losses.create("wgan-gp", gp_interval=k)`` does this).
    """
    gp_weight, name = _penalties.renamed_weight(gp_weight, critic_kwargs, "fastgan.functional.gradient_penalty")
    return _penalties.gradient_penalty(
        critic, real, fake, gp_weight, center, one_sided, alpha, critic_kwargs, generator=generator, weight_name=name
    )


def r1_penalty(critic: Callable[..., torch.Tensor], inputs: torch.Tensor, gamma: float = 10.0, **critic_kwargs: Any) -> torch.Tensor:
    """R1 regulariser: ``gamma/2 · mean_b ‖∇x D(x)_b‖²`` at ``inputs`` (real data; pass fake data
    for R2); ``gamma`` is a finite number >= 0. ``inputs`` are treated as constants (detached,
    not modified); the penalty back-propagates into the critic's parameters. The critic is
    called and checked as in :func:`gradient_penalty`."""
    return _penalties.r1_penalty(critic, inputs, gamma, critic_kwargs)


# --------------------------------------------------------------------------------------- LSGAN
def lsgan_discriminator_loss(real_out: torch.Tensor, fake_out: torch.Tensor, a: float = 0.0, b: float = 1.0) -> torch.Tensor:
    """LSGAN discriminator loss (eq. 10): ``½·mean((D(x) − b)²) + ½·mean((D(G(z)) − a)²)``; the
    targets ``a`` and ``b`` are finite numbers. A target tensor passed as ``fake_out`` (PyTorch's
    ``MSELoss(D(x), valid)`` order) is a ``ValueError``, as in :func:`gan_discriminator_loss`."""
    v.check_scores(("real_out", "fake_out"), real_out, fake_out)
    _mistakes.check_not_targets(("real_out", "fake_out"), real_out, fake_out)
    a, b = v.check_real("a", a), v.check_real("b", b)
    return _adv(real_out, fake_out, "lsgan", real_target=b, fake_target=a)


def lsgan_generator_loss(fake_out: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """LSGAN generator loss (eq. 10): ``½·mean((D(G(z)) − c)²)``; the target ``c`` is a finite
    number."""
    v.check_scores(("fake_out",), fake_out)
    _mistakes.refuse_target_argument("lsgan_generator_loss", "c", c)
    return _adv(fake_out, None, "lsgan", real_target=v.check_real("c", c))


# --------------------------------------------------------------------------------------- hinge
def hinge_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss: ``mean(relu(1 − D(x))) + mean(relu(1 + D(G(z))))``. A target
    tensor passed as ``fake_scores`` is a ``ValueError``, as in :func:`gan_discriminator_loss`."""
    v.check_scores(("real_scores", "fake_scores"), real_scores, fake_scores)
    _mistakes.check_not_targets(("real_scores", "fake_scores"), real_scores, fake_scores)
    return _adv(real_scores, fake_scores, "hinge", margin=1.0)


def hinge_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: ``−mean(D(G(z)))``."""
    v.check_scores(("fake_scores",), fake_scores)
    return _adv(fake_scores, None, "wgan")


# ------------------------------------------------------------------------------- EBGAN / BEGAN
def _check_energies(names: tuple[str, str], a: torch.Tensor, b: torch.Tensor) -> None:
    v.check_per_sample(names[0], a)
    v.check_per_sample(names[1], b)
    v.check_same_device(names, [a, b])
    v.check_same_dtype(names, [a, b])


def ebgan_discriminator_loss(real_energy: torch.Tensor, fake_energy: torch.Tensor, margin: float) -> torch.Tensor:
    """EBGAN discriminator loss (eq. 7): ``mean(E(x)) + mean(max(0, margin − E(G(z))))`` with the
    per-sample energies ``E`` of shape (B,) (same dtype and device); ``margin`` is a finite
    number >= 0."""
    _check_energies(("real_energy", "fake_energy"), real_energy, fake_energy)
    return _adv(real_energy, fake_energy, "margin", margin=v.check_nonneg("margin", margin))


def pulling_away_term(embeddings: torch.Tensor) -> torch.Tensor:
    """EBGAN's pulling-away term ``PT(S) = 1/(N(N−1)) Σ_{i≠j} cos²(S_i, S_j)``.

    ``embeddings`` is (N, …) with N ≥ 2, flattened per sample; cosines are between samples
    (rows), computed in fp32 (fp64 for fp64) and returned in ``embeddings``' dtype.

    Cosines do not depend on the rows' scales, and neither does the result: each row is divided
    by its largest absolute value before its norm is taken, so rows of any finite magnitude (fp32
    values from 1e-38 to 3e38, say) give the cosines of their exact values — no square
    overflows to inf or underflows to 0.

    A zero row (an all-zero embedding) counts as orthogonal to every row: its cosines are 0 (not
    NaN), so it adds 0 to the sum but still counts in N, and its gradient is finite (0). NaN in
    a row gives NaN; so does ±inf (its direction is undefined).
    """
    v.check_batched("embeddings", embeddings, min_batch=2)
    n = embeddings.shape[0]
    acc = v.accumulation_dtype(embeddings.dtype)
    s = embeddings.reshape(n, -1).to(acc)
    # Scale each row to a largest |entry| of 1 (exactly: m / m == 1), so its norm lies in
    # [1, sqrt(D)] whatever its magnitude; a zero row (m = 0) is left as it is. Both are
    # element-wise selections, no data-dependent branch.
    m = s.abs().amax(dim=1, keepdim=True)
    s = s / torch.where(m > 0, m, torch.ones_like(m))
    norms = torch.linalg.vector_norm(s, dim=1, keepdim=True)
    s = s / torch.where(norms > 0, norms, torch.ones_like(norms))  # zero rows stay 0: cos = 0
    cos2 = (s @ s.T).square()
    # exact i ≠ j sum; a masked fill, not boolean indexing (that would sync with the device)
    diagonal = torch.eye(n, dtype=torch.bool, device=s.device)
    return (cos2.masked_fill(diagonal, 0.0).sum() / (n * (n - 1))).to(embeddings.dtype)


def ebgan_generator_loss(fake_energy: torch.Tensor, embeddings: torch.Tensor | None = None, pt_weight: float = 0.1) -> torch.Tensor:
    """EBGAN generator loss (eq. 8): ``mean(E(G(z)))``, plus ``pt_weight · PT(embeddings)`` when
    the encoder embeddings of G(z) are given (EBGAN-PT): (B, …) with the batch of
    ``fake_energy``, on its device and of its dtype (under autocast the dtypes may differ; the
    result is then in the wider one)."""
    v.check_per_sample("fake_energy", fake_energy)
    pt_weight = v.check_nonneg("pt_weight", pt_weight)
    if embeddings is not None:
        v.check_batched("embeddings", embeddings, min_batch=2)
        v.check_same_device(("fake_energy", "embeddings"), [fake_energy, embeddings])
        v.check_same_dtype(("fake_energy", "embeddings"), [fake_energy, embeddings])
        if embeddings.shape[0] != fake_energy.shape[0]:
            raise ValueError(
                f"embeddings has batch {embeddings.shape[0]} but fake_energy has batch "
                f"{fake_energy.shape[0]}; expected the embeddings of the same samples"
            )
    loss = _adv(None, fake_energy, "wgan")
    if embeddings is not None:
        loss = loss + pt_weight * pulling_away_term(embeddings)
    return loss


def _check_k(k: object, ref: torch.Tensor) -> float | torch.Tensor:
    """BEGAN's k: a number in [0, 1], or a 0-dim floating tensor on ``ref``'s device (its value is
    not read: no host sync)."""
    if isinstance(k, torch.Tensor):
        v.check_float_tensor("k", k)
        if k.dim() != 0:
            raise ValueError(f"k must be a 0-dim tensor, got shape {tuple(k.shape)}")
        if k.device != ref.device:
            raise ValueError(f"k is on {k.device} but the errors are on {ref.device}; expected the same device")
        return k
    return v.check_unit_interval("k", k)


def began_discriminator_loss(real_error: torch.Tensor, fake_error: torch.Tensor, k: float | torch.Tensor) -> torch.Tensor:
    """BEGAN discriminator loss (eq. 9): ``mean(L(x)) − k_t · mean(L(G(z)))`` with the per-sample
    L1 reconstruction errors L of shape (B,) and the balance ``k_t``: a number in [0, 1], or a
    0-dim floating tensor on the errors' device (its value is not read, so not checked). The
    result is in the errors' dtype."""
    _check_energies(("real_error", "fake_error"), real_error, fake_error)
    k = _check_k(k, real_error)
    acc = v.accumulation_dtype(real_error.dtype)
    if isinstance(k, torch.Tensor):
        k = k.to(acc)
    loss = real_error.to(acc).mean() - k * fake_error.to(acc).mean()
    return loss.to(real_error.dtype)


def began_generator_loss(fake_error: torch.Tensor) -> torch.Tensor:
    """BEGAN generator loss: ``mean(L(G(z)))``."""
    v.check_per_sample("fake_error", fake_error)
    return _adv(None, fake_error, "wgan")


def began_update(
    k: float | torch.Tensor,
    real_error: torch.Tensor,
    fake_error: torch.Tensor,
    gamma: float = 0.5,
    lambda_k: float = 0.001,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BEGAN's proportional control of ``k`` and its convergence measure, on the device.

    ``k_next = clamp(k + lambda_k (γ·mean L(x) − mean L(G(z))), 0, 1)`` and
    ``M_global = mean L(x) + |γ·mean L(x) − mean L(G(z))|``.

    Returns ``(k_next, convergence)``: 0-dim tensors on the errors' device, outside autograd,
    computed without any host sync. ``k_next`` is in float32 or float64: k's dtype when k is a
    float32/float64 tensor, float32 for a float16/bfloat16 k (an update of ~1e-4 rounds away in
    16 bits: k would freeze), else the errors' accumulation dtype (fp64 for fp64 errors, fp32
    otherwise); ``convergence`` is in the accumulation dtype.
    """
    _check_energies(("real_error", "fake_error"), real_error, fake_error)
    k = _check_k(k, real_error)
    gamma = v.check_nonneg("gamma", gamma)
    lambda_k = v.check_nonneg("lambda_k", lambda_k)
    acc = v.accumulation_dtype(real_error.dtype)
    with torch.no_grad():
        real_mean = real_error.to(acc).mean()
        balance = gamma * real_mean - fake_error.to(acc).mean()
        if isinstance(k, torch.Tensor):
            k_dtype = torch.promote_types(k.dtype, torch.float32)
            k_acc = k.to(torch.promote_types(acc, k_dtype))
        else:
            k_dtype, k_acc = acc, torch.full((), k, dtype=acc, device=real_error.device)
        k_next = (k_acc + lambda_k * balance).clamp(0.0, 1.0).to(k_dtype)
        convergence = real_mean + balance.abs()
    return k_next, convergence
