"""The families' full losses as fastgan computes them: the loss object
``fastgan.losses.create(family)``'s discriminator loss plus its generator loss, with a
discriminator reduced to almost nothing, so that the loss itself is what is measured — forward
+ backward w.r.t. the real and fake inputs and D's parameters:

* ``gan``, ``cgan``, ``wgan``, ``lsgan``, ``hinge``: D is the identity on PatchGAN-shaped score
  maps (B, 1, 30, 30) (``cgan``: ``D(x, labels)``, the labels unused by this D);
* ``wgan-gp``: a linear critic ``D(x)_b = Σ_i w_i x_{b,i}`` on images; the penalty at per-sample
  interpolates runs a double backward through it;
* ``ebgan``, ``began``: an autoencoder ``AE(x) = w ⊙ x`` on images (EBGAN's embedding: the
  per-channel means of the reconstruction, for the pulling-away term).

:func:`loss_fn` is what the ``fastgan_<backend>`` providers time (under the backend) and, on the
``reference`` backend, what every provider of a family is checked against
(:func:`reference_loss_fn`) and what ``torch.compile`` compiles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

import fastgan
from fastgan.bench.catalogue import (
    BEGAN_GAMMA,
    BEGAN_K0,
    BEGAN_LAMBDA_K,
    EBGAN_MARGIN,
    GP_WEIGHT,
    PT_WEIGHT,
    SCORE_FAMILIES,
    Case,
)
from fastgan.bench.inputs import labels

#: the adversarial kind of each score family
KIND = {"gan": "bce", "cgan": "bce", "wgan": "wgan", "lsgan": "lsgan", "hinge": "hinge"}

#: the hyper-parameters of each family's loss object (the defaults, except BEGAN's k0)
HPARAMS: dict[str, dict[str, float]] = {
    "wgan-gp": {"gp_weight": GP_WEIGHT},
    "ebgan": {"margin": EBGAN_MARGIN, "pt_weight": PT_WEIGHT},
    "began": {"k0": BEGAN_K0, "gamma": BEGAN_GAMMA, "lambda_k": BEGAN_LAMBDA_K},
}


def linear_critic(w: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: (x * w).flatten(1).sum(1)


def autoencoder(w: torch.Tensor) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    def ae(x):
        recon = x * w
        return recon, recon.flatten(2).mean(2)  # embedding: per-channel means, (B, C)

    return ae


def loss_object(case: Case) -> Any:
    """``fastgan.losses.create(family, **HPARAMS[family])``."""
    return fastgan.losses.create(case.op, **HPARAMS.get(case.op, {}))


def loss_fn(case: Case, device: str = "cpu") -> Callable[..., torch.Tensor]:
    """``fn(*tensors) -> d_loss + g_loss`` through a new loss object of the family (under
    whatever backend is selected around the calls)."""
    fam = case.op
    loss = loss_object(case).to(device)
    if fam == "cgan":
        y = labels(case, device)

        def cond(x, _labels):  # a conditional D that ignores its labels
            return x

        return lambda real, fake: loss.discriminator_loss(cond, real, fake, y)[0] + loss.generator_loss(cond, fake, y)[0]
    if fam in SCORE_FAMILIES:

        def ident(x):
            return x

        return lambda real, fake: loss.discriminator_loss(ident, real, fake)[0] + loss.generator_loss(ident, fake)[0]
    make_d = linear_critic if fam == "wgan-gp" else autoencoder

    def fn(real, fake, w):
        D = make_d(w)
        d_loss = loss.discriminator_loss(D, real, fake)[0]
        loss.after_discriminator_step(D)  # BEGAN applies its k update here, once per step
        return d_loss + loss.generator_loss(D, fake)[0]

    return fn


def reference_loss_fn(case: Case, device: str = "cpu") -> Callable[..., torch.Tensor]:
    """:func:`loss_fn` on fastgan's ``reference`` backend, whatever the selection around it."""
    fn = loss_fn(case, device)

    def on_reference(*tensors):
        with fastgan.use_backend("reference"):
            return fn(*tensors)

    return on_reference
