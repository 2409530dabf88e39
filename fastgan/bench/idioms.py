"""The baselines' operators as plain tables of functions, and the full losses a user writes
with them.

A *table* maps each operator to a function: ``interpolate(real, fake, alpha)``,
``grad_norm_penalty(g)``, ``reconstruction_error(x, r, p)``, ``d_loss(kind, real, fake)`` and
``g_loss(kind, fake)`` (the adversarial terms of the discriminator and of the generator, kinds
``bce``, ``wgan``, ``lsgan``, ``hinge``, ``margin``). :data:`EAGER_IDIOM` is what users write in
eager PyTorch, :data:`BEST_EAGER` the best eager forms we know, and :func:`reference_table`
fastgan's references (``fastgan/ops/<op>.py``) — called directly, or compiled one by one.

:func:`op_fn` makes one operator case's function from a table; :func:`family_fn` makes a
family's full loss (discriminator loss + generator loss) *as a user writes it* with a table's
operators, on the minimal discriminators of :mod:`fastgan.bench.families`. These compositions
are the baselines fastgan is measured against, not fastgan: fastgan's families are its loss
objects (:mod:`fastgan.bench.families`), and :func:`fastgan.bench.checks.check` holds every
composition to the loss object's value and gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from fastgan.ops import OPERATORS

from fastgan.bench.catalogue import (
    BEGAN_GAMMA,
    BEGAN_K0,
    BEGAN_LAMBDA_K,
    CENTER,
    FAKE_TARGET,
    GP_WEIGHT,
    MARGIN,
    ONE_SIDED,
    PT_WEIGHT,
    REAL_TARGET,
    SCORE_FAMILIES,
    Case,
)
from fastgan.bench.families import KIND, autoencoder, linear_critic

Table = dict[str, Callable[..., torch.Tensor]]


def reference_fn(op: str) -> Callable[..., torch.Tensor]:
    """The reference function of ``fastgan/ops/<op>.py``."""
    return OPERATORS[op].reference


def _bcast(alpha: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return alpha.view((-1,) + (1,) * (like.dim() - 1))  # (B, 1, 1, 1)


# --------------------------------------------------------------------------------------------
# what users write


def _idiom_interpolate(real, fake, alpha):
    a = _bcast(alpha, real)
    return a * real + (1 - a) * fake


def _idiom_grad_norm_penalty(g):
    return ((g.view(g.shape[0], -1).norm(2, dim=1) - CENTER) ** 2).mean()


def _idiom_reconstruction_error(x, r, p):
    d = (x - r).abs() if p == 1 else (x - r) ** 2
    return d.view(x.shape[0], -1).mean(1)


def _idiom_d_loss(kind, real, fake):
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
    if kind == "wgan":
        return fake.mean() - real.mean()
    if kind == "lsgan":
        return 0.5 * ((real - REAL_TARGET) ** 2).mean() + 0.5 * ((fake - FAKE_TARGET) ** 2).mean()
    if kind == "hinge":
        return F.relu(MARGIN - real).mean() + F.relu(MARGIN + fake).mean()
    return real.mean() + F.relu(MARGIN - fake).mean()  # margin (EBGAN, on energies)


def _idiom_g_loss(kind, fake):
    if kind == "bce":  # non-saturating
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if kind == "lsgan":
        return 0.5 * ((fake - REAL_TARGET) ** 2).mean()
    return -fake.mean()  # wgan, hinge


EAGER_IDIOM: Table = {
    "interpolate": _idiom_interpolate,
    "grad_norm_penalty": _idiom_grad_norm_penalty,
    "reconstruction_error": _idiom_reconstruction_error,
    "d_loss": _idiom_d_loss,
    "g_loss": _idiom_g_loss,
}


# --------------------------------------------------------------------------------------------
# the best eager forms we know


def _best_interpolate(real, fake, alpha):
    return torch.lerp(fake, real, _bcast(alpha, real))


def _best_grad_norm_penalty(g):
    return (torch.linalg.vector_norm(g.flatten(1), dim=1) - CENTER).square().mean()


def _best_reconstruction_error(x, r, p):
    loss = F.l1_loss if p == 1 else F.mse_loss
    return loss(x, r, reduction="none").view(x.shape[0], -1).mean(1)


def _best_d_loss(kind, real, fake):
    if kind == "bce":
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if kind == "lsgan":
        return 0.5 * (real - REAL_TARGET).square().mean() + 0.5 * (fake - FAKE_TARGET).square().mean()
    if kind == "hinge":
        return (MARGIN - real).clamp_min(0).mean() + (MARGIN + fake).clamp_min(0).mean()
    if kind == "margin":
        return real.mean() + (MARGIN - fake).clamp_min(0).mean()
    return _idiom_d_loss(kind, real, fake)


def _best_g_loss(kind, fake):
    if kind == "bce":
        return F.softplus(-fake).mean()
    if kind == "lsgan":
        return 0.5 * (fake - REAL_TARGET).square().mean()
    return -fake.mean()


BEST_EAGER: Table = {
    "interpolate": _best_interpolate,
    "grad_norm_penalty": _best_grad_norm_penalty,
    "reconstruction_error": _best_reconstruction_error,
    "d_loss": _best_d_loss,
    "g_loss": _best_g_loss,
}


# --------------------------------------------------------------------------------------------
# fastgan's references


def reference_table(get: Callable[[str], Callable[..., Any]]) -> Table:
    """The table of fastgan's references, each operator's taken from ``get(op)`` at call time
    (:func:`reference_fn`, or its compiled form), with the public API's default parameters."""

    def g_loss(kind, fake):
        g_kind = kind if kind in ("bce", "lsgan") else "wgan"  # hinge's generator loss is wgan's
        return get("adversarial_loss")(fake, None, g_kind, REAL_TARGET, FAKE_TARGET, MARGIN)

    return {
        "interpolate": lambda real, fake, alpha: get("interpolate")(real, fake, alpha),
        "grad_norm_penalty": lambda g: get("grad_norm_penalty")(g, CENTER, ONE_SIDED),
        "reconstruction_error": lambda x, r, p: get("reconstruction_error")(x, r, p),
        "d_loss": lambda kind, real, fake: get("adversarial_loss")(real, fake, kind, REAL_TARGET, FAKE_TARGET, MARGIN),
        "g_loss": g_loss,
    }


REFERENCE: Table = reference_table(reference_fn)


# --------------------------------------------------------------------------------------------
# a case's function from a table


def op_fn(table: Table, case: Case) -> Callable[..., torch.Tensor]:
    """Operator ``case.op`` from ``table``, called with the case's tensors only."""
    if case.op in ("interpolate", "grad_norm_penalty"):
        return table[case.op]
    if case.op == "reconstruction_error":
        p, rec = case.kw["p"], table["reconstruction_error"]
        return lambda x, r: rec(x, r, p)
    kind, d_loss = case.kw["kind"], table["d_loss"]
    return lambda real, fake: d_loss(kind, real, fake)


def _pulling_away(emb: torch.Tensor) -> torch.Tensor:
    n = emb.shape[0]
    s = emb.reshape(n, -1)
    s = s / torch.linalg.vector_norm(s, dim=1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny ** 0.5)
    cos2 = (s @ s.T).square()
    return cos2.masked_fill(torch.eye(n, dtype=torch.bool, device=s.device), 0.0).sum() / (n * (n - 1))


def _score_family(t: Table, kind: str) -> Callable[..., torch.Tensor]:
    def fn(real, fake):  # D is the identity: the inputs are its scores
        return t["d_loss"](kind, real, fake.detach()) + t["g_loss"](kind, fake)

    return fn


def _wgan_gp(t: Table) -> Callable[..., torch.Tensor]:
    def fn(real, fake, w):
        D = linear_critic(w)
        d = t["d_loss"]("wgan", D(real), D(fake.detach()))
        alpha = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
        x_hat = t["interpolate"](real.detach(), fake.detach(), alpha).requires_grad_(True)
        (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        return d + GP_WEIGHT * t["grad_norm_penalty"](g) + t["g_loss"]("wgan", D(fake))

    return fn


def _ebgan(t: Table) -> Callable[..., torch.Tensor]:
    rec = t["reconstruction_error"]

    def fn(real, fake, w):
        ae = autoencoder(w)
        e_real = rec(real, ae(real)[0], 2)
        e_fake = rec(fake.detach(), ae(fake.detach())[0], 2)
        d = t["d_loss"]("margin", e_real, e_fake)
        recon, emb = ae(fake)
        return d + rec(fake, recon, 2).mean() + PT_WEIGHT * _pulling_away(emb)

    return fn


def _began(t: Table) -> Callable[..., torch.Tensor]:
    rec, state = t["reconstruction_error"], {"k": None}

    def fn(real, fake, w):
        ae = autoencoder(w)
        if state["k"] is None:
            state["k"] = torch.tensor(BEGAN_K0, dtype=torch.float32, device=real.device)
        l_real = rec(real, ae(real)[0], 1)
        l_fake = rec(fake.detach(), ae(fake.detach())[0], 1)
        k = state["k"].clone()
        d = l_real.mean() - k * l_fake.mean()
        with torch.no_grad():  # k's proportional control, on the device
            state["k"].copy_((k + BEGAN_LAMBDA_K * (BEGAN_GAMMA * l_real.mean() - l_fake.mean())).clamp(0, 1))
        return d + rec(fake, ae(fake)[0], 1).mean()

    return fn


def family_fn(table: Table, case: Case) -> Callable[..., torch.Tensor]:
    """``fn(*tensors) -> d_loss + g_loss`` of family ``case.op`` as a user writes it with
    ``table``'s operators (the D of each family: :mod:`fastgan.bench.families`)."""
    fam = case.op
    if fam in SCORE_FAMILIES:
        return _score_family(table, KIND[fam])
    makers = {"wgan-gp": _wgan_gp, "ebgan": _ebgan, "began": _began}
    if fam not in makers:
        raise ValueError(f"unknown family {fam!r}")
    return makers[fam](table)
