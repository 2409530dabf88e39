"""Mixed precision: the WGAN-GP gradient penalty with a ``torch.amp.GradScaler``.

With loss scaling, the gradient the penalty needs — ∇x̂ D(x̂) — has to be taken of the *scaled*
critic output (otherwise small fp16 gradients underflow to 0), and then unscaled before the
norm is computed (otherwise the penalty ``(‖g‖ − 1)²`` would be of ``scale·g``: huge, or inf).
This is PyTorch's recipe for gradient penalties under AMP ("Automatic Mixed Precision examples",
section "Gradient penalty"); :func:`gradient_penalty` follows it step by step:

1. the critic runs on the per-sample interpolates under the caller's autocast state;
2. ``torch.autograd.grad(scaler.scale(D(x̂).sum()), x̂, create_graph=True)`` — the scaled
   gradient, outside autocast (backward passes do not run under autocast);
3. the gradient is multiplied by ``1 / scale`` (ordinary arithmetic, not ``scaler.unscale_``: these
   gradients belong to no optimizer). The scale is read as a tensor (``scaler.scale`` of a one),
   never as a Python float, so nothing waits for the device;
4. the penalty ``gp_weight · mean_b φ(‖g_b‖₂ − center)`` is computed under autocast, as in the recipe,
   with fastgan's ``grad_norm_penalty`` (whose per-sample norms are fp64 for every input dtype:
   docs/design.md §6).

The caller then scales the total loss as usual::

    scaler = torch.amp.GradScaler("cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        d_loss = FG.wgan_critic_loss(D(real), D(fake))
        d_loss = d_loss + amp.gradient_penalty(D, real, fake, scaler)   # from fastgan import amp
    scaler.scale(d_loss).backward()
    scaler.step(opt_d)
    scaler.update()

If the scaled gradient overflowed (inf), the penalty is inf or NaN, so the parameters' gradients
are too: ``scaler.step`` skips that step and ``scaler.update`` lowers the scale — the same
mechanism that protects every other part of the loss. Without a scaler (``scaler=None``, or a
disabled one) this is :func:`fastgan.functional.gradient_penalty` (bitwise), which also takes
``real`` and ``fake`` of different precisions here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fastgan import _penalties

__all__ = ["gradient_penalty"]


def gradient_penalty(
    critic: Callable[..., torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    scaler: torch.amp.GradScaler | None = None,
    gp_weight: float = 10.0,
    center: float = 1.0,
    one_sided: bool = False,
    alpha: Any = None,
    *,
    generator: torch.Generator | None = None,
    **critic_kwargs: Any,
) -> torch.Tensor:
    """WGAN-GP's penalty ``gp_weight · mean_b φ(‖∇x̂ D(x̂)_b‖₂ − center)`` under AMP loss scaling.

    Arguments as :func:`fastgan.functional.gradient_penalty`, checked by the same code whether
    ``scaler`` is given, disabled or None (``x̂_b = fake_b + α_b (real_b − fake_b)`` with one
    ``α_b ~ U[0, 1]`` per sample unless ``alpha`` is given; ``real`` and ``fake`` are treated as
    constants; φ(t) = t², or ``max(t, 0)²`` when ``one_sided``; a critic whose output does not
    depend on its input is a ``ValueError``), plus ``scaler``, the ``torch.amp.GradScaler`` that
    scales the loss this penalty is added to. ``fake`` may come from a generator run under
    autocast (fp16/bf16) while ``real`` is fp32, inside autocast or not: both are interpolated in
    the wider dtype, and ``alpha`` (any per-sample shape, a floating tensor or NumPy array) is
    converted to that dtype. ``generator`` draws α when ``alpha`` is not given; ``weight=`` is
    the deprecated name of ``gp_weight``.

    Call it where the rest of the loss is computed (inside ``torch.autocast`` when that is on):
    the critic runs under that autocast state. Returns a 0-dim tensor that back-propagates into
    the critic's parameters (the gradient is taken with ``create_graph=True``); no host sync.
    Without an enabled scaler it compiles like the functional penalty; ``torch.compile`` does not
    trace an enabled ``GradScaler``, so with one it runs eagerly (``fullgraph=True`` refuses it).
    """
    if scaler is not None and not isinstance(scaler, torch.amp.GradScaler):
        raise TypeError(f"scaler must be a torch.amp.GradScaler or None, got {type(scaler).__name__}")
    # the one implementation of the penalty (fastgan.functional.gradient_penalty's too), with
    # real and fake allowed to differ in precision outside autocast as well
    gp_weight, name = _penalties.renamed_weight(gp_weight, critic_kwargs, "fastgan.amp.gradient_penalty")
    return _penalties.gradient_penalty(
        critic, real, fake, gp_weight, center, one_sided, alpha, critic_kwargs, scaler=scaler, mixed_precision=True,
        generator=generator, weight_name=name,
    )
