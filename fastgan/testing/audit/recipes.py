"""The paper's losses of each family (fastgan.functional), and the same losses with any set of
catalogue departures switched on (``flags``: catalogue ids, docs/audit.md).

With no flags every recipe is fastgan's reference composition; each flag replaces only the piece
it names, so flags compose (the audit tries pairs of entries).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from fastgan import functional as FG

__all__ = ["d_loss", "g_loss", "k_update", "call_d"]


def call_d(D: Callable, x: torch.Tensor, labels: torch.Tensor | None):
    """``D(x)``, or ``D(x, labels)`` for a conditional model."""
    return D(x) if labels is None else D(x, labels)


def _recon(D, x, labels):
    out = call_d(D, x, labels)
    if isinstance(out, (tuple, list)):
        return out[0], (out[1] if len(out) > 1 else None)
    return out, None


# ------------------------------------------------------------------------- GAN / CGAN / LSGAN
def _bce_d(r, f, flags):
    if "cgan-mse" in flags:
        return (r - 1).square().mean() + f.square().mean()
    if "bce-on-sigmoid" in flags:
        return (F.binary_cross_entropy(torch.sigmoid(r), torch.ones_like(r))
                + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f)))
    return FG.gan_discriminator_loss(r, f)


def _bce_g(f, saturating, flags):
    if "cgan-mse" in flags:
        return -f.square().mean() if saturating else (f - 1).square().mean()
    if "bce-on-sigmoid" in flags:
        if saturating:
            return -F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f))
        return F.binary_cross_entropy(torch.sigmoid(f), torch.ones_like(f))
    return FG.gan_generator_loss(f, saturating=saturating)


# ---------------------------------------------------------------------------------- WGAN-GP
def _penalty(D, real, fake, labels, eps, hp, flags):
    """WGAN-GP's penalty: fastgan's with no penalty flag, else written out with the flags."""
    one_sided = bool(hp["one_sided"]) != ("gp-sidedness" in flags)
    kw = {} if labels is None else {"labels": labels}
    gp_flags = {"gp-batch-norm", "gp-pixel-norm", "gp-axis-norm", "gp-one-eps", "gp-leak",
                "gp-no-create-graph", "gp-sqrt-nan"} & set(flags)
    if not gp_flags:
        # positional: robust to a rename of the hyper-parameters' keywords
        return FG.gradient_penalty(D, real, fake, hp["gp_weight"], 1.0, one_sided, eps(real.shape[0]), **kw)
    b = real.shape[0]
    e = eps(1) if "gp-one-eps" in flags else eps(b)
    e = e.reshape(-1, *([1] * (real.dim() - 1)))
    f = fake if "gp-leak" in flags else fake.detach()
    x_hat = e * real.detach() + (1 - e) * f
    if not x_hat.requires_grad:
        x_hat.requires_grad_(True)
    out = call_d(D, x_hat, labels)
    (g,) = torch.autograd.grad(out.sum(), x_hat, create_graph="gp-no-create-graph" not in flags)
    if "gp-batch-norm" in flags:
        n = g.norm(2).reshape(1)
    elif "gp-pixel-norm" in flags:
        n = g.norm(2, dim=1)
    elif "gp-axis-norm" in flags:
        n = g.norm(2, dim=-1)
    elif "gp-sqrt-nan" in flags:
        n = torch.sqrt(g.flatten(1).square().sum(1))
    else:
        n = g.flatten(1).norm(2, dim=1)
    t = n - 1
    if one_sided:
        t = torch.relu(t)
    return hp["gp_weight"] * t.square().mean()


# ---------------------------------------------------------------------------------- EBGAN
def _pulling_away(emb, flags):
    pt_flags = {"pt-cosines", "pt-batch-axis", "pt-diagonal", "pt-no-normaliser", "pt-zero-row-nan"} & set(flags)
    if not pt_flags:
        return FG.pulling_away_term(emb)
    s = emb.flatten(1)
    n = s.shape[0]
    norms = s.norm(dim=0 if "pt-batch-axis" in flags else 1, keepdim=True)
    if "pt-zero-row-nan" not in flags:
        norms = torch.where(norms > 0, norms, torch.ones_like(norms))
    s = s / norms
    c = s @ s.T
    if "pt-cosines" not in flags:
        c = c.square()
    total = c.sum() if "pt-diagonal" in flags else c.masked_fill(torch.eye(n, dtype=torch.bool), 0.0).sum()
    return total if "pt-no-normaliser" in flags else total / (n * (n - 1))


def _energy(D, x, labels, *, detach_target=False, p=2):
    recon, emb = _recon(D, x, labels)
    target = x.detach() if detach_target else x
    return FG.reconstruction_error(target, recon.reshape(x.shape), p=p), emb


# ---------------------------------------------------------------------------------- the parts
def d_loss(family, flags, hp, D, real, fd, fp, labels=None, k=None, eps=None):
    """The discriminator loss of ``family`` with ``flags``; ``fd`` is the fake batch the
    adversarial term sees (the user may detach it), ``fp`` the one the penalty sees."""
    if family in ("gan", "cgan", "lsgan", "wgan", "wgan-gp"):
        r, f = call_d(D, real, labels), call_d(D, fd, labels)
        if family in ("gan", "cgan"):
            loss = _bce_d(r, f, flags)
        elif family == "lsgan":
            loss = FG.lsgan_discriminator_loss(r, f, hp["a"], hp["b"]) * (2 if "lsgan-no-half" in flags else 1)
        else:
            loss = FG.wgan_critic_loss(r, f)
        if "d-averaged" in flags:
            loss = loss / 2
        if family == "wgan-gp" and "gp-missing" not in flags:
            loss = loss + _penalty(D, real, fp, labels, eps, hp, flags)
        return loss
    if family == "ebgan":
        er, _ = _energy(D, real, labels)
        ef, _ = _energy(D, fd, labels)
        if "ebgan-batch-margin" in flags:
            return er.mean() + torch.relu(hp["margin"] - ef.mean())
        return FG.ebgan_discriminator_loss(er, ef, hp["margin"])
    p = 2 if "began-squared" in flags else 1
    lr, _ = _energy(D, real, labels, p=p)
    lf, _ = _energy(D, fd, labels, p=p)
    return FG.began_discriminator_loss(lr, lf, k)


def g_loss(family, flags, hp, D, fake, labels=None):
    """The generator loss of ``family`` with ``flags``."""
    if family in ("gan", "cgan"):
        saturating = bool(hp["saturating"]) != ("saturating-g" in flags)
        return _bce_g(call_d(D, fake, labels), saturating, flags)
    if family == "lsgan":
        return FG.lsgan_generator_loss(call_d(D, fake, labels), hp["c"]) * (2 if "lsgan-no-half" in flags else 1)
    if family in ("wgan", "wgan-gp"):
        return FG.wgan_generator_loss(call_d(D, fake, labels))
    if family == "ebgan":
        e, emb = _energy(D, fake, labels, detach_target="ebgan-target-detached" in flags)
        loss = FG.ebgan_generator_loss(e)
        if hp["pt_weight"] > 0:
            if emb is None:
                raise ValueError("ebgan with pt_weight > 0 needs D to return (reconstruction, embedding)")
            loss = loss + hp["pt_weight"] * _pulling_away(emb, flags)
        return loss
    lf, _ = _energy(D, fake, labels, p=2 if "began-squared" in flags else 1)
    return FG.began_generator_loss(lf)


def k_update(flags, hp, k, D, real, fake, labels=None):
    """BEGAN's next k with ``flags``."""
    p = 2 if "began-squared" in flags else 1
    with torch.no_grad():
        lr, _ = _energy(D, real, labels, p=p)
        lf, _ = _energy(D, fake, labels, p=p)
        if "began-k-unclamped" in flags:
            return k + hp["lambda_k"] * (hp["gamma"] * lr.mean() - lf.mean())
        return FG.began_update(k, lr, lf, hp["gamma"], hp["lambda_k"])[0]
