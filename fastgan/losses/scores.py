"""The families whose D returns scores: GAN, CGAN, WGAN, WGAN-GP (with lazy regularisation),
LSGAN and hinge. See :mod:`fastgan.losses`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fastgan import _validation as v
from fastgan import functional as FG
from fastgan.losses.base import GANLossBase

__all__ = ["GANLoss", "CGANLoss", "WGANLoss", "WGANGPLoss", "LSGANLoss", "HingeLoss"]


def _call(D: Callable[..., Any], x: torch.Tensor, labels: torch.Tensor | None) -> Any:
    return D(x) if labels is None else D(x, labels)


def _scores(D: Callable[..., Any], x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    out = _call(D, x, labels)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"D must return a tensor of scores, got {type(out).__name__}")
    return out

class _ScoreLoss(GANLossBase):
    """Families whose D returns scores: the losses are functions of D(real) and D(fake)."""

    def _d(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _g(self, fake_scores: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_labels(self, labels: torch.Tensor | None, name: str = "labels") -> None:
        if name != "labels" and not isinstance(labels, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(labels).__name__}")

    def discriminator_loss(self, D, real, fake, labels=None, fake_labels=None):
        """``(loss, logs)`` of D on ``real`` and ``fake`` (detached). With labels, D is called as
        ``D(real, labels)`` and ``D(fake, fake_labels)``; ``fake_labels`` defaults to ``labels``
        (pass the labels the fakes were generated with when they differ)."""
        self._check_labels(labels)
        if fake_labels is None:
            fake_labels = labels
        else:
            self._check_labels(fake_labels, "fake_labels")
        real_scores = _scores(D, real, labels)
        fake_scores = _scores(D, fake.detach(), fake_labels)
        loss = self._d(real_scores, fake_scores)
        logs = {
            "d_loss": loss.detach(),
            "d_real": real_scores.detach().mean(),
            "d_fake": fake_scores.detach().mean(),
        }
        return loss, logs

    def generator_loss(self, D, fake, labels=None):
        self._check_labels(labels)
        loss = self._g(_scores(D, fake, labels))
        return loss, {"g_loss": loss.detach()}


class GANLoss(_ScoreLoss):
    """GAN (eq. 3): binary cross-entropy on logits; non-saturating generator by default,
    ``saturating=True`` for the minimax form."""

    name = "gan"

    def __init__(self, saturating: bool = False) -> None:
        super().__init__()
        self.saturating = v.check_bool("saturating", saturating)

    def hparams(self):
        return {"saturating": self.saturating}

    def _d(self, real_scores, fake_scores):
        return FG.gan_discriminator_loss(real_scores, fake_scores)

    def _g(self, fake_scores):
        return FG.gan_generator_loss(fake_scores, saturating=self.saturating)


class CGANLoss(GANLoss):
    """CGAN (eq. 4): the GAN loss with D and G both given the condition ``labels``; every call
    of D is ``D(x, labels)``. ``labels`` is required; :meth:`discriminator_loss` takes the fakes'
    own labels as ``fake_labels`` when they were generated from other labels than the real batch's
    (``D(fake, fake_labels)``; default: ``labels``)."""

    name = "cgan"

    def _check_labels(self, labels, name="labels"):
        if labels is None:
            raise ValueError(f"{name} is required for the cgan loss: D is called as D(x, labels)")
        if not isinstance(labels, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(labels).__name__}")


class WGANLoss(_ScoreLoss):
    """WGAN (eq. 5): critic ``mean(D(G(z))) − mean(D(x))``, generator ``−mean(D(G(z)))``; every
    critic weight is clipped to ``[−clip_value, clip_value]`` in :meth:`after_discriminator_step`.
    5 critic steps per generator step."""

    name = "wgan"
    n_critic = 5

    def __init__(self, clip_value: float = 0.01) -> None:
        super().__init__()
        self.clip_value = v.check_nonneg("clip_value", clip_value)
        if self.clip_value == 0:
            raise ValueError("clip_value must be > 0, got 0")

    def hparams(self):
        return {"clip_value": self.clip_value}

    def _d(self, real_scores, fake_scores):
        return FG.wgan_critic_loss(real_scores, fake_scores)

    def _g(self, fake_scores):
        return FG.wgan_generator_loss(fake_scores)

    def after_discriminator_step(self, D):
        FG.clip_weights_(D, self.clip_value)


class WGANGPLoss(_ScoreLoss):
    """WGAN-GP (eq. 6): the WGAN critic loss plus ``gp_weight · mean_b((‖∇x̂ D(x̂)_b‖₂ − center)²)``
    at per-sample interpolates (``one_sided=True``: ``max(0, ‖g‖ − center)²``). No clipping.
    5 critic steps per generator step.

    Lazy regularisation (Karras et al. 2020, "Analyzing and Improving the Image Quality of
    StyleGAN", §3.1): with ``gp_interval = k > 1`` the penalty runs on every k-th discriminator
    step only (the 1st, the (k+1)-th, …), with its weight multiplied by k, so that its average
    contribution is unchanged while k − 1 of every k critic steps skip the double backward.
    ``gp_interval = 1`` (the default) is the paper's loss. Only training-mode calls count as
    steps; in eval mode the penalty runs on every call with weight ``gp_weight``. The step
    counter is the buffer ``gp_step`` (saved in the ``state_dict``, so a resumed run continues
    the schedule exactly); the decision reads a host-side copy of it, so no step syncs with the
    device.

    With the functional API the same pattern is
    ``if step % k == 0: loss = loss + gradient_penalty(D, real, fake, gp_weight=k * gp_weight)``."""

    name = "wgan-gp"
    n_critic = 5
    gp_step: torch.Tensor

    def __init__(self, gp_weight: float = 10.0, center: float = 1.0, one_sided: bool = False,
                 gp_interval: int = 1) -> None:
        super().__init__()
        self.gp_weight = v.check_nonneg("gp_weight", gp_weight)
        self.center = v.check_nonneg("center", center)
        self.one_sided = v.check_bool("one_sided", one_sided)
        self.gp_interval = v.check_positive_int("gp_interval", gp_interval)
        self.register_buffer("gp_step", torch.zeros((), dtype=torch.int64))
        self._gp_step: int | None = 0  # host copy of gp_step; None: read it again (after a load)

    def hparams(self):
        return {"gp_weight": self.gp_weight, "center": self.center, "one_sided": self.one_sided,
                "gp_interval": self.gp_interval}

    def _penalty_weight(self) -> float | None:
        """The weight of this call's penalty (``None``: skipped), advancing the step counter."""
        if not self.training or self.gp_interval == 1:
            if self.training:
                self._advance()
            return self.gp_weight
        step = self._advance()
        return self.gp_weight * self.gp_interval if step % self.gp_interval == 0 else None

    def _advance(self) -> int:
        if self._gp_step is None:
            self._gp_step = int(self.gp_step)  # once after a load
        step = self._gp_step
        self._gp_step = step + 1
        self.gp_step.fill_(step + 1)
        return step

    def _upgrade_config(self, state):
        # saved before lazy regularisation: the penalty ran on every step
        if isinstance(state, dict) and isinstance(state.get("hparams"), dict) and "gp_interval" not in state["hparams"]:
            state = {**state, "hparams": {**state["hparams"], "gp_interval": 1}}
        return state

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):  # type: ignore[override]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if prefix + "gp_step" in missing_keys:  # a state saved before lazy regularisation: step 0
            missing_keys.remove(prefix + "gp_step")
            self.gp_step.zero_()
        self._gp_step = None

    def discriminator_loss(self, D, real, fake, labels=None, *, alpha=None, generator=None):
        """``(loss, logs)``: the critic loss plus the penalty at ``x̂ = fake + α (real − fake)``.
        ``alpha`` (one coefficient per sample, any per-sample shape: (B,), (B, 1, 1, 1), …, or a
        NumPy array) or ``generator`` (a ``torch.Generator`` that draws α) replay an existing
        run exactly; both as in :func:`fastgan.functional.gradient_penalty`. A call that skips
        the penalty (``gp_interval > 1``) ignores them."""
        real_scores = _scores(D, real, labels)
        fake_scores = _scores(D, fake.detach(), labels)
        critic = D if labels is None else (lambda x: D(x, labels))
        wgan = FG.wgan_critic_loss(real_scores, fake_scores)
        weight = self._penalty_weight()
        if weight is not None:
            gp = FG.gradient_penalty(
                critic, real, fake.detach(), gp_weight=weight, center=self.center, one_sided=self.one_sided,
                alpha=alpha, generator=generator,
            )
        else:
            gp = torch.zeros((), dtype=wgan.dtype, device=wgan.device)
        loss = wgan + gp
        logs = {
            "d_loss": loss.detach(),
            "wasserstein": -wgan.detach(),
            "gp": gp.detach(),
        }
        return loss, logs

    def _g(self, fake_scores):
        return FG.wgan_generator_loss(fake_scores)


class LSGANLoss(_ScoreLoss):
    """LSGAN (eq. 10): ``½·mean((D(x) − b)²) + ½·mean((D(G(z)) − a)²)`` and
    ``½·mean((D(G(z)) − c)²)``; defaults a = 0, b = c = 1."""

    name = "lsgan"

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        super().__init__()
        self.a, self.b, self.c = v.check_real("a", a), v.check_real("b", b), v.check_real("c", c)

    def hparams(self):
        return {"a": self.a, "b": self.b, "c": self.c}

    def _d(self, real_scores, fake_scores):
        return FG.lsgan_discriminator_loss(real_scores, fake_scores, a=self.a, b=self.b)

    def _g(self, fake_scores):
        return FG.lsgan_generator_loss(fake_scores, c=self.c)


class HingeLoss(_ScoreLoss):
    """Hinge loss: ``mean(relu(1 − D(x))) + mean(relu(1 + D(G(z))))`` and ``−mean(D(G(z)))``."""

    name = "hinge"

    def _d(self, real_scores, fake_scores):
        return FG.hinge_discriminator_loss(real_scores, fake_scores)

    def _g(self, fake_scores):
        return FG.hinge_generator_loss(fake_scores)
